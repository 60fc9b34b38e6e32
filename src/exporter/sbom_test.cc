#include "exporter/sbom.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace ocib::exporter {
namespace {

// ---- helpers -------------------------------------------------------------------------------

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// An rpm header blob as the sqlite rpmdb stores it.
std::string rpm_header(const std::string& name, const std::string& version,
                       const std::string& release, const std::string& arch,
                       std::optional<uint32_t> epoch) {
  std::string data, index;
  auto add_string = [&](uint32_t tag, const std::string& v) {
    put_be32(index, tag);
    put_be32(index, 6);
    put_be32(index, static_cast<uint32_t>(data.size()));
    put_be32(index, 1);
    data += v;
    data += '\0';
  };
  if (epoch) {
    while (data.size() % 4) data += '\0';
    put_be32(index, 1003);
    put_be32(index, 4);
    put_be32(index, static_cast<uint32_t>(data.size()));
    put_be32(index, 1);
    put_be32(data, *epoch);
  }
  add_string(1000, name);
  add_string(1001, version);
  add_string(1002, release);
  add_string(1022, arch);
  add_string(1004, "a summary");  // a tag the scanner does not read
  std::string blob;
  put_be32(blob, static_cast<uint32_t>(index.size() / 16));
  put_be32(blob, static_cast<uint32_t>(data.size()));
  return blob + index + data;
}

void put_le(std::string& s, size_t off, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string uvarint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  return s + static_cast<char>(v);
}

const std::string kInfoStart("0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6", 16);
const std::string kInfoEnd("\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2", 16);

// A little-endian ELF64 whose .go.buildinfo holds `vers` and `mod` (Go >= 1.18 inline
// strings); `sections` false: no section headers, the data found through a writable PT_LOAD.
std::string go_elf(const std::string& vers, const std::string& mod, bool sections = true,
                   uint8_t flags = 2) {
  std::string f(64, '\0');
  f.replace(0, 4,
            "\x7f"
            "ELF");
  f[4] = 2;  // 64-bit
  f[5] = 1;  // little-endian
  f[6] = 1;
  put_le(f, 16, 2, 2);  // ET_EXEC
  put_le(f, 18, 62, 2);
  const std::string strtab("\0.shstrtab\0.go.buildinfo\0", 25);
  const size_t str_off = f.size();
  f += strtab;
  while (f.size() % 16) f += '\0';
  const size_t bi_off = f.size();
  std::string bi("\xff Go buildinf:", 14);
  bi += static_cast<char>(8);
  bi += static_cast<char>(flags);
  bi.resize(32, '\0');
  bi += uvarint(vers.size()) + vers + uvarint(mod.size()) + mod;
  f += bi;
  while (f.size() % 8) f += '\0';
  if (sections) {
    const size_t sh_off = f.size();
    f += std::string(3 * 64, '\0');
    auto sh = [&](int i, uint32_t name, uint32_t type, uint64_t off, uint64_t size) {
      size_t b = sh_off + static_cast<size_t>(i) * 64;
      put_le(f, b, name, 4);
      put_le(f, b + 4, type, 4);
      put_le(f, b + 24, off, 8);
      put_le(f, b + 32, size, 8);
    };
    sh(1, 1, 3, str_off, strtab.size());
    sh(2, 11, 1, bi_off, bi.size());
    put_le(f, 40, sh_off, 8);
    put_le(f, 58, 64, 2);
    put_le(f, 60, 3, 2);
    put_le(f, 62, 1, 2);
  } else {
    const size_t ph_off = f.size();
    f += std::string(2 * 56, '\0');
    auto ph = [&](int i, uint32_t type, uint32_t pflags, uint64_t off, uint64_t size) {
      size_t b = ph_off + static_cast<size_t>(i) * 56;
      put_le(f, b, type, 4);
      put_le(f, b + 4, pflags, 4);
      put_le(f, b + 8, off, 8);
      put_le(f, b + 32, size, 8);
    };
    ph(0, 1, 5, 0, bi_off);                  // text: r-x
    ph(1, 1, 6, bi_off, f.size() - bi_off);  // data: rw-
    put_le(f, 32, ph_off, 8);
    put_le(f, 54, 56, 2);
    put_le(f, 56, 2, 2);
  }
  return f;
}

ReadAt reader(const std::string& bytes) {
  return [&bytes](uint64_t off, size_t n, std::string& out) {
    if (off > bytes.size() || n > bytes.size() - off) return false;
    out = bytes.substr(off, n);
    return true;
  };
}

const std::string kModinfo = kInfoStart +
                             "path\texample.com/app/cmd/app\n"
                             "mod\texample.com/app\tv1.2.3\th1:abc=\n"
                             "dep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n"
                             "dep\tgolang.org/x/sys\tv0.1.0\th1:ghi=\n"
                             "=>\tgithub.com/fork/sys\tv0.2.0\th1:jkl=\n"
                             "dep\texample.com/local\tv0.0.0\n"
                             "=>\t../local\t\n"
                             "build\t-compiler=gc\n" +
                             kInfoEnd;

// ---- dpkg, apk, os-release -----------------------------------------------------------------

TEST(Sbom, DpkgStatusInstalledOnly) {
  auto p = parse_dpkg_status(
      "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: "
      "amd64\nDescription: x\n y\n\n"
      "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
      "Package: never\nStatus: purge ok not-installed\n\n"
      "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n",
      "debian");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "bash");
  EXPECT_EQ(p[0].version, "5.2.15-2+b2");
  EXPECT_EQ(p[0].purl(), "pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64");
  EXPECT_EQ(p[1].name, "libc6");
  // A distroless status.d file has no Status field.
  auto d =
      parse_dpkg_status("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n", "debian");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].version, "2024a-0+deb12u1");
}

TEST(Sbom, ApkAndOsRelease) {
  auto p = parse_apk_installed("C:Q1=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\n",
                               "alpine");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].purl(), "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
  EXPECT_EQ(os_release_id("NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=40\n"), "fedora");
  EXPECT_EQ(os_release_id("ID=\"opensuse-tumbleweed\"\n"), "opensuse-tumbleweed");
  EXPECT_EQ(os_release_id("NAME=x\n"), "");
}

// ---- rpm -----------------------------------------------------------------------------------

TEST(Sbom, RpmHeaderParses) {
  auto h = parse_rpm_header(rpm_header("bash", "5.2.26", "1.fc40", "x86_64", std::nullopt));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->name, "bash");
  EXPECT_EQ(h->version, "5.2.26");
  EXPECT_EQ(h->release, "1.fc40");
  EXPECT_EQ(h->arch, "x86_64");
  EXPECT_FALSE(h->epoch);
  auto e = parse_rpm_header(rpm_header("shadow-utils", "4.15.1", "3.fc40", "x86_64", 2));
  ASSERT_TRUE(e && e->epoch);
  EXPECT_EQ(*e->epoch, 2u);
  Package p{"rpm", "shadow-utils", "4.15.1-3.fc40", "x86_64", "fedora", "2", ""};
  EXPECT_EQ(p.purl(), "pkg:rpm/fedora/shadow-utils@4.15.1-3.fc40?arch=x86_64&epoch=2");
  EXPECT_EQ(p.version_info(), "2:4.15.1-3.fc40");
}

TEST(Sbom, RpmHeaderHostileInputNeverReadsOutOfBounds) {
  const std::string good = rpm_header("zlib-ng", "2.1.6", "2.fc40", "x86_64", 1);
  // Every truncation: the copy is exactly that long, so a read past it is a heap overflow that
  // ASan (or a guard page) would catch; the parser must refuse each one.
  for (size_t n = 0; n < good.size(); ++n) {
    std::unique_ptr<char[]> buf(new char[n ? n : 1]);
    std::memcpy(buf.get(), good.data(), n);
    EXPECT_FALSE(parse_rpm_header(std::string_view(buf.get(), n))) << "truncated at " << n;
  }
  // Counts that overflow 32-bit arithmetic, offsets past the store, strings without their NUL.
  std::string huge;
  put_be32(huge, 0x10000000);
  put_be32(huge, 0xfffffff0);
  EXPECT_FALSE(parse_rpm_header(huge + std::string(64, 'x')));
  std::string bad_off = good;
  bad_off[8 + 16 + 8] = '\x7f';  // the NAME entry's offset, high byte
  EXPECT_FALSE(parse_rpm_header(bad_off));
  std::string no_nul = good;
  std::replace(no_nul.begin() + 8 + 16 * 6, no_nul.end(), '\0', 'x');
  EXPECT_FALSE(parse_rpm_header(no_nul));
  // Random garbage and random byte flips of a good header: anything but a crash.
  std::mt19937 rng(17);
  for (int round = 0; round < 20000; ++round) {
    std::string b;
    if (round % 2) {
      b = good;
      for (int k = 0; k < 1 + round % 7; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    } else {
      b.resize(rng() % 300);
      for (auto& c : b) c = static_cast<char>(rng());
      if (b.size() >= 8 && round % 4 == 0) {
        b[0] = b[1] = b[2] = 0;
        b[4] = b[5] = 0;  // small counts, so that the entries are walked
      }
    }
    std::unique_ptr<char[]> buf(new char[b.size() + 1]);
    std::memcpy(buf.get(), b.data(), b.size());
    auto h = parse_rpm_header(std::string_view(buf.get(), b.size()));
    if (h) {
      EXPECT_FALSE(h->name.empty());
      EXPECT_LE(h->name.size(), b.size());
    }
  }
}

// An sqlite rpmdb made with the sqlite API (the schema rpm's sqlite backend creates), as bytes.
std::string make_rpmdb(const std::vector<std::string>& blobs, bool wal,
                       const std::string& extra_sql = "") {
  auto path = std::filesystem::temp_directory_path() /
              ("sbom-test-" + std::to_string(::getpid()) + ".sqlite");
  std::filesystem::remove(path);
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql =
      std::string(wal ? "PRAGMA journal_mode=WAL;" : "") +
      "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);" +
      extra_sql;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  for (const auto& b : blobs) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO Packages (blob) VALUES (?)", -1, &st, nullptr);
    sqlite3_bind_blob(st, 1, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

TEST(Sbom, RpmdbSqlite) {
  for (bool wal : {false, true}) {
    std::string bytes =
        make_rpmdb({rpm_header("bash", "5.2.26", "1.fc40", "x86_64", std::nullopt),
                    std::string("\x00\x00\x00\x01garbage", 11),
                    rpm_header("fedora-release", "40", "39", "noarch", std::nullopt)},
                   wal);
    if (wal) {
      ASSERT_EQ(bytes[18], 2) << "the db is not in WAL mode";
    }
    size_t bad = 0;
    auto h = read_rpmdb_sqlite(bytes, &bad);
    ASSERT_TRUE(h.ok()) << h.error().str();
    ASSERT_EQ(h->size(), 2u);
    EXPECT_EQ((*h)[0].name, "bash");
    EXPECT_EQ((*h)[1].arch, "noarch");
    EXPECT_EQ(bad, 1u);
  }
  size_t bad = 0;
  EXPECT_FALSE(
      read_rpmdb_sqlite("not a database at all, not at all, not at all, not at all, not at all, "
                        "not at all, not at all, not at all",
                        &bad)
          .ok());
  // A Packages that is a view (hostile schema) is refused, not run.
  std::string v = make_rpmdb({}, false,
                             "CREATE TABLE P2 (blob BLOB); DROP TABLE Packages; CREATE VIEW "
                             "Packages AS SELECT blob FROM P2;");
  EXPECT_FALSE(read_rpmdb_sqlite(v, &bad).ok());
  // Truncated and corrupted copies of a real db: errors or fewer rows, never a crash.
  std::string good =
      make_rpmdb({rpm_header("bash", "5.2.26", "1.fc40", "x86_64", std::nullopt)}, false);
  for (size_t n = 0; n < good.size(); n += 97) (void)read_rpmdb_sqlite(good.substr(0, n), &bad);
  std::mt19937 rng(3);
  for (int round = 0; round < 300; ++round) {
    std::string b = good;
    for (int k = 0; k < 8; ++k) b[100 + rng() % (b.size() - 100)] = static_cast<char>(rng());
    (void)read_rpmdb_sqlite(b, &bad);
  }
}

// ---- Go ------------------------------------------------------------------------------------

TEST(Sbom, GoBuildInfoFromSections) {
  const std::string elf = go_elf("go1.21.5", kModinfo);
  std::string note;
  auto bi = read_go_buildinfo(elf.size(), reader(elf), &note);
  ASSERT_TRUE(bi);
  EXPECT_EQ(bi->go_version, "go1.21.5");
  EXPECT_EQ(bi->path, "example.com/app/cmd/app");
  ASSERT_TRUE(bi->main);
  EXPECT_EQ(bi->main->path, "example.com/app");
  EXPECT_EQ(bi->main->version, "v1.2.3");
  ASSERT_EQ(bi->deps.size(), 3u);
  EXPECT_EQ(bi->deps[0].path, "github.com/pkg/errors");
  EXPECT_EQ(bi->deps[0].version, "v0.9.1");
  EXPECT_EQ(bi->deps[1].path, "github.com/fork/sys");  // replaced by a versioned module
  EXPECT_EQ(bi->deps[1].version, "v0.2.0");
  EXPECT_EQ(bi->deps[2].path, "example.com/local");  // a local replacement keeps the original
  EXPECT_TRUE(note.empty());
}

TEST(Sbom, GoBuildInfoFromProgramHeaders) {
  const std::string elf = go_elf("go1.22.0", kModinfo, false);
  auto bi = read_go_buildinfo(elf.size(), reader(elf), nullptr);
  ASSERT_TRUE(bi);
  EXPECT_EQ(bi->deps.size(), 3u);
}

TEST(Sbom, GoBuildInfoOldFormatAndNotGo) {
  const std::string old = go_elf("go1.16", kModinfo, true, 0);
  std::string note;
  EXPECT_FALSE(read_go_buildinfo(old.size(), reader(old), &note));
  EXPECT_NE(note.find("pre-1.18"), std::string::npos);
  const std::string c_binary = go_elf("x", "y").replace(64 + 32, 14, std::string(14, 'z'));
  EXPECT_FALSE(read_go_buildinfo(c_binary.size(), reader(c_binary), nullptr));
  const std::string not_elf(200, 'A');
  EXPECT_FALSE(read_go_buildinfo(not_elf.size(), reader(not_elf), nullptr));
}

TEST(Sbom, GoBuildInfoHostileInput) {
  for (bool sections : {true, false}) {
    const std::string good = go_elf("go1.21.5", kModinfo, sections);
    // Each truncation, seen as a file of that size: nothing is read past it.
    for (size_t n = 0; n < good.size(); ++n) {
      std::string t = good.substr(0, n);
      (void)read_go_buildinfo(t.size(), reader(t), nullptr);
    }
    std::mt19937 rng(sections ? 11 : 12);
    for (int round = 0; round < 20000; ++round) {
      std::string b = good;
      for (int k = 0; k < 1 + round % 5; ++k) {
        size_t at = rng() % b.size();
        // Mostly the headers' fields (offsets, counts, sizes), sometimes anywhere.
        if (round % 3) at = rng() % 64;
        b[at] = static_cast<char>(rng());
      }
      auto bi = read_go_buildinfo(b.size(), reader(b), nullptr);
      if (bi) {
        EXPECT_LE(bi->go_version.size(), b.size());
      }
    }
  }
  // A huge varint length does not allocate it.
  std::string elf = go_elf("go1.21.5", kModinfo);
  const size_t at = elf.find("\xff Go buildinf:") + 32;
  elf.replace(at, 1, "\xff\xff\xff\xff\x0f");
  EXPECT_FALSE(read_go_buildinfo(elf.size(), reader(elf), nullptr));
}

TEST(Sbom, GoRealBinaryIfInstalled) {
  const char* path = "/usr/bin/docker-registry";
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << path << " not installed";
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  ReadAt rd = [fd](uint64_t off, size_t n, std::string& out) {
    out.resize(n);
    return ::pread(fd, out.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  };
  auto bi = read_go_buildinfo(static_cast<uint64_t>(st.st_size), rd, nullptr);
  ::close(fd);
  ASSERT_TRUE(bi);
  EXPECT_EQ(bi->go_version.rfind("go1.", 0), 0u);
  EXPECT_EQ(bi->path, "github.com/docker/distribution/cmd/registry");
  // The same binary with its section headers gone (e_shnum = 0, as sstrip leaves it): found
  // through the first writable, non-executable PT_LOAD.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 64u);
  bytes[60] = bytes[61] = 0;
  auto stripped = read_go_buildinfo(bytes.size(), reader(bytes), nullptr);
  ASSERT_TRUE(stripped);
  EXPECT_EQ(stripped->go_version, bi->go_version);
  EXPECT_EQ(stripped->path, bi->path);
}

TEST(Sbom, GoPurls) {
  EXPECT_EQ((Package{"golang", "github.com/pkg/errors", "v0.9.1", "", "", "", ""}).purl(),
            "pkg:golang/github.com/pkg/errors@v0.9.1");
  EXPECT_EQ(
      (Package{"golang", "github.com/docker/distribution", "v2.8.1+incompatible", "", "", "", ""})
          .purl(),
      "pkg:golang/github.com/docker/distribution@v2.8.1+incompatible");
  EXPECT_EQ((Package{"golang", "example.com/app", "(devel)", "", "", "", ""}).purl(),
            "pkg:golang/example.com/app@%28devel%29");
  EXPECT_EQ((Package{"golang", "stdlib", "go1.21.5", "", "", "", ""}).purl(),
            "pkg:golang/stdlib@1.21.5");
}

// ---- npm, python ---------------------------------------------------------------------------

TEST(Sbom, Npm) {
  auto p =
      parse_package_json(R"({"name": "@babel/core", "version": "7.24.0", "dependencies": {}})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->purl(), "pkg:npm/%40babel/core@7.24.0");
  EXPECT_FALSE(parse_package_json(R"({"name": "x"})"));
  EXPECT_FALSE(parse_package_json("{not json"));
  EXPECT_FALSE(parse_package_json(R"(["name", "version"])"));
  auto v3 = parse_package_lock(R"({"lockfileVersion": 3, "packages": {
      "": {"name": "app", "version": "1.0.0"},
      "node_modules/left-pad": {"version": "1.3.0"},
      "node_modules/a/node_modules/@s/b": {"version": "2.0.0"},
      "node_modules/ws": {"link": true, "resolved": "packages/ws"},
      "packages/ws": {"name": "ws", "version": "0.1.0"}}})");
  ASSERT_EQ(v3.size(), 2u);
  EXPECT_EQ(v3[0].name, "@s/b");
  EXPECT_EQ(v3[1].name, "left-pad");
  auto v1 = parse_package_lock(R"({"lockfileVersion": 1, "dependencies": {
      "express": {"version": "4.18.2", "dependencies": {"debug": {"version": "2.6.9"}}},
      "mine": {"version": "file:../mine"}}})");
  ASSERT_EQ(v1.size(), 2u);
  EXPECT_EQ(v1[0].name, "express");
  EXPECT_EQ(v1[1].version, "2.6.9");
  EXPECT_TRUE(parse_package_lock("[]").empty());
}

TEST(Sbom, Python) {
  auto p = parse_python_metadata(
      "Metadata-Version: 2.1\r\nName: Typing_Extensions\r\nVersion: 4.9.0 \r\nSummary: "
      "x\r\n\r\nName: not-this\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "Typing_Extensions");
  EXPECT_EQ(p->version, "4.9.0");
  EXPECT_EQ(p->purl(), "pkg:pypi/typing-extensions@4.9.0");
  EXPECT_FALSE(parse_python_metadata("Name: x\n"));
  EXPECT_FALSE(parse_python_metadata("\nName: x\nVersion: 1\n"));
}

// ---- the walk ------------------------------------------------------------------------------

void write(const std::filesystem::path& p, const std::string& data, mode_t mode = 0644) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
  ::chmod(p.c_str(), mode);
}

TEST(Sbom, WalkFindsEachKindAndFollowsNoSymlink) {
  auto root = std::filesystem::temp_directory_path() / ("sbom-walk-" + std::to_string(::getpid()));
  auto outside =
      std::filesystem::temp_directory_path() / ("sbom-outside-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(outside);
  write(root / "usr/lib/os-release", "ID=fedora\n");
  std::filesystem::create_directories(root / "etc");
  std::filesystem::create_symlink("../usr/lib/os-release", root / "etc/os-release");
  write(root / "usr/lib/sysimage/rpm/rpmdb.sqlite",
        make_rpmdb({rpm_header("bash", "5.2.26", "1.fc40", "x86_64", std::nullopt)}, true));
  std::filesystem::create_directories(root / "var/lib");
  std::filesystem::create_symlink("../../usr/lib/sysimage/rpm", root / "var/lib/rpm");
  write(root / "var/lib/dpkg/status.d/tzdata",
        "Package: tzdata\nVersion: 2024a\nArchitecture: all\n");
  write(root / "var/lib/dpkg/status.d/tzdata.md5sums", "abc  /usr/share/zoneinfo/UTC\n");
  write(root / "app/node_modules/left-pad/package.json",
        R"({"name":"left-pad","version":"1.3.0"})");
  write(root / "app/node_modules/@scope/pkg/package.json",
        R"({"name":"@scope/pkg","version":"2.0.0"})");
  write(root / "app/package.json",
        R"({"name":"app","version":"9.9.9"})");  // the project, not installed
  write(root / "app/package-lock.json",
        R"({"lockfileVersion":3,"packages":{"node_modules/other":{"version":"1.0.0"}}})");
  write(root / "srv/package-lock.json",
        R"({"lockfileVersion":3,"packages":{"node_modules/lonely":{"version":"0.1.0"}}})");
  write(root / "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        "Name: six\nVersion: 1.16.0\n\nbody\n");
  write(root / "usr/lib/python3.11/site-packages/old.egg-info/PKG-INFO",
        "Name: old\nVersion: 0.1\n");
  write(root / "opt/not-site/x.dist-info/METADATA", "Name: nope\nVersion: 1\n");
  write(root / "usr/local/bin/app", go_elf("go1.21.5", kModinfo), 0755);
  write(root / "usr/local/bin/app-noexec", go_elf("go1.21.5", kModinfo), 0644);
  write(root / "proc/ignored/app", go_elf("go1.21.5", kModinfo), 0755);
  // What a symlink points at outside the image is never read.
  write(outside / "node_modules/evil/package.json", R"({"name":"evil","version":"6.6.6"})");
  write(outside / "status", "Package: evil\nStatus: install ok installed\nVersion: 6\n");
  std::filesystem::create_directories(root / "lib/node_modules");
  std::filesystem::create_symlink(outside / "node_modules/evil", root / "lib/node_modules/evil");
  std::filesystem::create_symlink(outside, root / "usr/lib/python3/dist-packages/evil.dist-info");
  std::filesystem::create_directories(root / "var/lib/dpkg");
  std::filesystem::create_symlink(outside / "status", root / "var/lib/dpkg/status");
  std::filesystem::create_directories(root / "node/node_modules/fifo");
  ASSERT_EQ(::mkfifo((root / "node/node_modules/fifo/package.json").c_str(), 0644), 0);

  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ScanReport r = report_from_json(report_to_json(scan_image(fd)));
  ::close(fd);
  std::vector<std::string> got;
  for (const auto& p : r.packages) got.push_back(p.purl() + " " + p.location);
  std::vector<std::string> want = {
      "pkg:deb/fedora/tzdata@2024a?arch=all /var/lib/dpkg/status.d/tzdata",
      "pkg:golang/example.com/app@v1.2.3 /usr/local/bin/app",
      "pkg:golang/example.com/local@v0.0.0 /usr/local/bin/app",
      "pkg:golang/github.com/fork/sys@v0.2.0 /usr/local/bin/app",
      "pkg:golang/github.com/pkg/errors@v0.9.1 /usr/local/bin/app",
      "pkg:golang/stdlib@1.21.5 /usr/local/bin/app",
      "pkg:npm/%40scope/pkg@2.0.0 /app/node_modules/@scope/pkg/package.json",
      "pkg:npm/left-pad@1.3.0 /app/node_modules/left-pad/package.json",
      "pkg:npm/lonely@0.1.0 /srv/package-lock.json",
      "pkg:pypi/old@0.1 /usr/lib/python3.11/site-packages/old.egg-info/PKG-INFO",
      "pkg:pypi/six@1.16.0 /usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
      "pkg:rpm/fedora/bash@5.2.26-1.fc40?arch=x86_64 /usr/lib/sysimage/rpm/rpmdb.sqlite",
  };
  EXPECT_EQ(got, want);
  EXPECT_GE(r.stats.executables, 1u);
  EXPECT_GE(r.stats.elf, 1u);
  EXPECT_GT(r.stats.entries, 20u);
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(outside);
}

}  // namespace
}  // namespace ocib::exporter

namespace ocib::exporter {
namespace {

TEST(Sbom, WalkNotesWhatItCannotRead) {
  auto root = std::filesystem::temp_directory_path() / ("sbom-notes-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  write(root / "var/lib/rpm/Packages", std::string(4096, '\0'));  // BerkeleyDB: not read
  write(root / "usr/lib/sysimage/rpm/rpmdb.sqlite", "SQLite format 3 but not really, and too short");
  write(root / "usr/bin/old-go", go_elf("go1.16", kModinfo, true, 0), 0755);
  write(root / "usr/bin/c-tool", std::string("\x7f" "ELF") + std::string(200, '\0'), 0755);
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ScanReport r = scan_image(fd);
  ::close(fd);
  EXPECT_TRUE(r.packages.empty());
  std::string all;
  for (const auto& n : r.notes) all += n + "\n";
  EXPECT_NE(all.find("/var/lib/rpm/Packages: an rpm BerkeleyDB database, not supported"), std::string::npos) << all;
  EXPECT_NE(all.find("/usr/lib/sysimage/rpm/rpmdb.sqlite: not an SQLite 3 database"), std::string::npos) << all;
  EXPECT_NE(all.find("/usr/bin/old-go: Go build info in the pre-1.18 pointer format"), std::string::npos) << all;
  EXPECT_EQ(r.stats.elf, 2u);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace ocib::exporter
