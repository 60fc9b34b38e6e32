#include "exporter/sbom.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <set>
#include <sstream>
#include <tuple>

#include "base/fd.h"

namespace ocib::exporter {

using json = nlohmann::json;

namespace {

// ---- purls ---------------------------------------------------------------------------------

// Percent-encodes all but the unreserved characters (and '+', which versions carry:
// v2.8.1+incompatible, 1.0+dfsg).
std::string pct_encode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string Package::purl() const {
  if (type == "golang") {
    // The toolchain's standard library: versionInfo "go1.21.5", purl version "1.21.5" (syft).
    std::string v = name == "stdlib" && version.rfind("go", 0) == 0 ? version.substr(2) : version;
    return "pkg:golang/" + pct_encode(name, true) + "@" + pct_encode(v, false);
  }
  if (type == "npm") return "pkg:npm/" + pct_encode(name, true) + "@" + pct_encode(version, false);
  if (type == "pypi") {
    // The purl spec: pypi names lowercased, '_' as '-'.
    std::string n = lower(name);
    std::replace(n.begin(), n.end(), '_', '-');
    return "pkg:pypi/" + pct_encode(n, false) + "@" + pct_encode(version, false);
  }
  std::string ns = distro.empty() ? "" : pct_encode(distro, false) + "/";
  std::string q;
  if (!arch.empty()) q += "arch=" + pct_encode(arch, false);
  if (!epoch.empty()) q += std::string(q.empty() ? "" : "&") + "epoch=" + pct_encode(epoch, false);
  // deb and apk versions as written before (the tests and consumers read them verbatim).
  std::string v = type == "rpm" ? pct_encode(version, false) : version;
  return "pkg:" + type + "/" + ns + pct_encode(name, false) + "@" + v + (q.empty() ? "" : "?" + q);
}

std::string Package::version_info() const {
  if (type == "rpm" && !epoch.empty()) return epoch + ":" + version;
  return version;
}

// ---- os-release, dpkg, apk ----------------------------------------------------------------

std::string os_release_id(std::string_view text) {
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("ID=", 0) == 0) {
      std::string id = line.substr(3);
      id.erase(std::remove_if(id.begin(), id.end(),
                              [](char c) { return c == '"' || c == '\'' || c == '\r'; }),
               id.end());
      return id;
    }
  return "";
}

std::vector<Package> parse_dpkg_status(std::string_view text, const std::string& distro) {
  std::vector<Package> out;
  // Paragraphs of "Field: value" lines; continuation lines start with a space.
  std::istringstream in(std::string(text) + "\n\n");
  Package p;
  std::string st;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      // Distroless status.d files have no Status field: every paragraph is installed.
      bool installed = st.empty() || (st.find("installed") != std::string::npos &&
                                      st.find("not-installed") == std::string::npos &&
                                      st.find("config-files") == std::string::npos);
      if (!p.name.empty() && installed) {
        p.type = "deb";
        p.distro = distro;
        out.push_back(p);
      }
      p = Package();
      st.clear();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string k = line.substr(0, c), v = line.substr(c + 1);
    while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.erase(0, 1);
    if (k == "Package")
      p.name = v;
    else if (k == "Version")
      p.version = v;
    else if (k == "Architecture")
      p.arch = v;
    else if (k == "Status")
      st = v.empty() ? "?" : v;
  }
  return out;
}

std::vector<Package> parse_apk_installed(std::string_view text, const std::string& distro) {
  std::vector<Package> out;
  std::istringstream in(std::string(text) + "\n\n");
  Package p;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      if (!p.name.empty()) {
        p.type = "apk";
        p.distro = distro;
        out.push_back(p);
      }
      p = Package();
      continue;
    }
    if (line.size() < 2 || line[1] != ':') continue;
    std::string v = line.substr(2);
    if (line[0] == 'P')
      p.name = v;
    else if (line[0] == 'V')
      p.version = v;
    else if (line[0] == 'A')
      p.arch = v;
  }
  return out;
}

// ---- rpm -----------------------------------------------------------------------------------

namespace {

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

constexpr uint32_t kRpmTagName = 1000, kRpmTagVersion = 1001, kRpmTagRelease = 1002,
                   kRpmTagEpoch = 1003, kRpmTagArch = 1022;
constexpr uint32_t kRpmInt32 = 4, kRpmString = 6, kRpmStringArray = 8, kRpmI18nString = 9;
// rpm's own limits (header.c): at most 0xffff tags and 256 MiB of data.
constexpr uint32_t kRpmMaxTags = 0xffff, kRpmMaxData = 256u << 20;

}  // namespace

std::optional<RpmHeader> parse_rpm_header(std::string_view blob) {
  const auto* b = reinterpret_cast<const unsigned char*>(blob.data());
  const size_t n = blob.size();
  if (n < 8) return std::nullopt;
  const uint32_t il = be32(b), dl = be32(b + 4);
  if (il == 0 || il > kRpmMaxTags || dl > kRpmMaxData) return std::nullopt;
  // 64-bit arithmetic: il and dl are bounded above, so this cannot wrap.
  const uint64_t index_end = 8 + uint64_t{il} * 16;
  if (index_end + dl > n) return std::nullopt;
  const unsigned char* data = b + index_end;
  RpmHeader h;
  auto string_at = [&](uint32_t off) -> std::optional<std::string> {
    if (off >= dl) return std::nullopt;
    const void* nul = std::memchr(data + off, '\0', dl - off);
    if (!nul) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(data + off),
                       static_cast<const unsigned char*>(nul) - (data + off));
  };
  for (uint32_t i = 0; i < il; ++i) {
    const unsigned char* e = b + 8 + uint64_t{i} * 16;
    const uint32_t tag = be32(e), type = be32(e + 4), off = be32(e + 8), count = be32(e + 12);
    std::string* field = nullptr;
    switch (tag) {
      case kRpmTagName:
        field = &h.name;
        break;
      case kRpmTagVersion:
        field = &h.version;
        break;
      case kRpmTagRelease:
        field = &h.release;
        break;
      case kRpmTagArch:
        field = &h.arch;
        break;
      case kRpmTagEpoch:
        if (type != kRpmInt32 || count < 1 || off % 4 != 0 || uint64_t{off} + 4 > dl)
          return std::nullopt;
        h.epoch = be32(data + off);
        continue;
      default:
        continue;
    }
    if ((type != kRpmString && type != kRpmStringArray && type != kRpmI18nString) || count < 1)
      return std::nullopt;
    auto s = string_at(off);
    if (!s) return std::nullopt;
    *field = std::move(*s);
  }
  if (h.name.empty() || h.version.empty()) return std::nullopt;
  return h;
}

namespace {

struct SqliteDb {
  sqlite3* db = nullptr;
  ~SqliteDb() {
    if (db) sqlite3_close_v2(db);
  }
};
struct SqliteStmt {
  sqlite3_stmt* st = nullptr;
  ~SqliteStmt() {
    if (st) sqlite3_finalize(st);
  }
};

// Bounded work for a hostile database: a VIEW or a crafted b-tree cannot keep the scan busy.
int progress_budget(void* counter) {
  auto* left = static_cast<int64_t*>(counter);
  return --*left < 0 ? 1 : 0;
}

}  // namespace

Result<std::vector<RpmHeader>> read_rpmdb_sqlite(std::string bytes, size_t* bad) {
  *bad = 0;
  if (bytes.size() < 100 || bytes.compare(0, 16, std::string("SQLite format 3\0", 16)) != 0)
    return Error(Errc::kCorrupt, "not an SQLite 3 database");
  // rpm keeps its db in WAL mode (header bytes 18/19 = 2); an in-memory copy cannot have a WAL,
  // so it is read as a rollback-journal db (what a cleanly closed rpmdb holds is all in it).
  if (bytes[18] == 2) bytes[18] = 1;
  if (bytes[19] == 2) bytes[19] = 1;
  SqliteDb d;
  if (sqlite3_open_v2(":memory:", &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    return Error(Errc::kIo, "sqlite: cannot open an in-memory database");
  sqlite3_db_config(d.db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(d.db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(d.db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(d.db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  sqlite3_limit(d.db, SQLITE_LIMIT_LENGTH, static_cast<int>(kRpmMaxData) + 1024);
  const auto size = static_cast<sqlite3_int64>(bytes.size());
  auto* mem = static_cast<unsigned char*>(sqlite3_malloc64(static_cast<sqlite3_uint64>(size)));
  if (!mem) return Error(Errc::kIo, "sqlite: out of memory for the database copy");
  std::memcpy(mem, bytes.data(), bytes.size());
  bytes.clear();
  bytes.shrink_to_fit();
  // FREEONCLOSE hands `mem` to sqlite whatever the result.
  int rc = sqlite3_deserialize(d.db, "main", mem, size, size,
                               SQLITE_DESERIALIZE_READONLY | SQLITE_DESERIALIZE_FREEONCLOSE);
  if (rc != SQLITE_OK) return Error(Errc::kCorrupt, std::string("sqlite: ") + sqlite3_errmsg(d.db));
  int64_t budget = 50'000'000 / 1000;  // progress callbacks, one per 1000 VM steps
  sqlite3_progress_handler(d.db, 1000, progress_budget, &budget);
  {
    SqliteStmt q;
    if (sqlite3_prepare_v2(d.db, "SELECT type FROM sqlite_master WHERE name = 'Packages'", -1,
                           &q.st, nullptr) != SQLITE_OK)
      return Error(Errc::kCorrupt, std::string("sqlite: ") + sqlite3_errmsg(d.db));
    rc = sqlite3_step(q.st);
    if (rc != SQLITE_ROW) return Error(Errc::kCorrupt, "no Packages table");
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(q.st, 0));
    if (!t || std::string(t) != "table") return Error(Errc::kCorrupt, "Packages is not a table");
  }
  SqliteStmt q;
  if (sqlite3_prepare_v2(d.db, "SELECT blob FROM Packages", -1, &q.st, nullptr) != SQLITE_OK)
    return Error(Errc::kCorrupt, std::string("sqlite: ") + sqlite3_errmsg(d.db));
  std::vector<RpmHeader> out;
  while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
    if (sqlite3_column_type(q.st, 0) != SQLITE_BLOB) {
      ++*bad;
      continue;
    }
    const void* p = sqlite3_column_blob(q.st, 0);
    const int n = sqlite3_column_bytes(q.st, 0);
    auto h = p && n > 0 ? parse_rpm_header(
                              std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)))
                        : std::nullopt;
    if (h)
      out.push_back(std::move(*h));
    else
      ++*bad;
  }
  if (rc != SQLITE_DONE)
    return Error(Errc::kCorrupt, std::string("sqlite: ") + sqlite3_errmsg(d.db));
  return out;
}

// ---- Go build info -------------------------------------------------------------------------

namespace {

constexpr std::string_view kGoMagic("\xff Go buildinf:", 14);
constexpr size_t kGoHeader = 32, kGoAlign = 16, kGoSearch = 64 << 10, kGoMaxString = 4 << 20;
// Without section headers (sstrip), the data segment is searched further: an externally linked
// binary's .data (cgo) sits before .go.buildinfo.
constexpr uint64_t kGoSearchStripped = 4 << 20;

struct GoRange {
  uint64_t off = 0, len = 0;
  bool section = false;  // .go.buildinfo itself, or a whole data segment
};

struct Elf {
  bool is64 = false, big = false;
  uint64_t get(const std::string& b, size_t off, size_t width) const {
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) {
      uint64_t byte = static_cast<unsigned char>(b[off + (big ? i : width - 1 - i)]);
      v = (v << 8) | byte;
    }
    return v;
  }
};

// LEB128 as Go's binary.Uvarint; nullopt on overflow or a short buffer.
std::optional<std::pair<uint64_t, size_t>> uvarint(std::string_view b) {
  uint64_t x = 0;
  for (size_t i = 0, s = 0; i < b.size() && i < 10; ++i, s += 7) {
    auto c = static_cast<unsigned char>(b[i]);
    if (c < 0x80) {
      if (i == 9 && c > 1) return std::nullopt;
      return std::make_pair(x | (uint64_t{c} << s), i + 1);
    }
    x |= uint64_t{c & 0x7fu} << s;
  }
  return std::nullopt;
}

// Where to look for the magic: .go.buildinfo; when the file has no section headers, the first
// writable PT_LOAD. An ELF whose sections are there without .go.buildinfo is not a Go binary.
std::optional<GoRange> go_data_range(uint64_t size, const ReadAt& read) {
  std::string h;
  if (size < 52 || !read(0, 64 < size ? 64 : size, h) || h.size() < 52) return std::nullopt;
  if (h.compare(0, 4,
                "\x7f"
                "ELF") != 0)
    return std::nullopt;
  Elf e;
  if (h[4] != 1 && h[4] != 2) return std::nullopt;
  if (h[5] != 1 && h[5] != 2) return std::nullopt;
  e.is64 = h[4] == 2;
  e.big = h[5] == 2;
  if (e.is64 && h.size() < 64) return std::nullopt;
  const uint64_t phoff = e.is64 ? e.get(h, 32, 8) : e.get(h, 28, 4);
  const uint64_t shoff = e.is64 ? e.get(h, 40, 8) : e.get(h, 32, 4);
  const uint64_t phentsize = e.get(h, e.is64 ? 54 : 42, 2), phnum = e.get(h, e.is64 ? 56 : 44, 2);
  const uint64_t shentsize = e.get(h, e.is64 ? 58 : 46, 2), shnum = e.get(h, e.is64 ? 60 : 48, 2);
  const uint64_t shstrndx = e.get(h, e.is64 ? 62 : 50, 2);
  const uint64_t sh_need = e.is64 ? 64 : 40, ph_need = e.is64 ? 56 : 32;
  auto inside = [size](uint64_t off, uint64_t len) { return off <= size && len <= size - off; };
  // Section headers: find .go.buildinfo by name. Sizes are capped before anything is read.
  if (shnum > 0 && shentsize >= sh_need && shentsize <= 4096 && shstrndx < shnum &&
      shnum * shentsize <= (4u << 20) && inside(shoff, shnum * shentsize)) {
    std::string sh;
    if (read(shoff, static_cast<size_t>(shnum * shentsize), sh)) {
      // sh_name @0 (4), sh_type @4 (4), sh_offset @16 (4) / @24 (8), sh_size @20 (4) / @32 (8).
      auto at = [&](uint64_t i, size_t off) { return static_cast<size_t>(i * shentsize) + off; };
      auto name_off = [&](uint64_t i) { return e.get(sh, at(i, 0), 4); };
      auto type_of = [&](uint64_t i) { return e.get(sh, at(i, 4), 4); };
      auto offset_of = [&](uint64_t i) {
        return e.is64 ? e.get(sh, at(i, 24), 8) : e.get(sh, at(i, 16), 4);
      };
      auto size_of = [&](uint64_t i) {
        return e.is64 ? e.get(sh, at(i, 32), 8) : e.get(sh, at(i, 20), 4);
      };
      const uint64_t stro = offset_of(shstrndx),
                     strs = std::min<uint64_t>(size_of(shstrndx), 1 << 20);
      std::string strtab;
      if (type_of(shstrndx) != 8 /* NOBITS */ && inside(stro, strs) &&
          read(stro, static_cast<size_t>(strs), strtab)) {
        static const std::string want(".go.buildinfo", sizeof ".go.buildinfo");  // with its NUL
        for (uint64_t i = 0; i < shnum; ++i) {
          const uint64_t no = name_off(i);
          if (no >= strtab.size() ||
              strtab.compare(static_cast<size_t>(no), want.size(), want) != 0)
            continue;
          if (type_of(i) == 8) return std::nullopt;
          const uint64_t off = offset_of(i), len = size_of(i);
          if (!inside(off, len)) return std::nullopt;
          return GoRange{off, len, true};
        }
        return std::nullopt;  // sections read, none is .go.buildinfo
      }
    }
  }
  // Program headers: the first writable loadable segment (stripped section headers).
  if (phnum > 0 && phentsize >= ph_need && phentsize <= 4096 && phnum * phentsize <= (1u << 20) &&
      inside(phoff, phnum * phentsize)) {
    std::string ph;
    if (!read(phoff, static_cast<size_t>(phnum * phentsize), ph)) return std::nullopt;
    for (uint64_t i = 0; i < phnum; ++i) {
      const size_t b = static_cast<size_t>(i * phentsize);
      const uint64_t type = e.get(ph, b, 4);
      const uint64_t flags = e.is64 ? e.get(ph, b + 4, 4) : e.get(ph, b + 24, 4);
      const uint64_t off = e.is64 ? e.get(ph, b + 8, 8) : e.get(ph, b + 4, 4);
      const uint64_t filesz = e.is64 ? e.get(ph, b + 32, 8) : e.get(ph, b + 16, 4);
      if (type == 1 /* PT_LOAD */ && (flags & 3) == 2 /* PF_W without PF_X, as debug/buildinfo */) {
        if (!inside(off, filesz)) return std::nullopt;
        return GoRange{off, filesz, false};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<GoBuildInfo> read_go_buildinfo(uint64_t size, const ReadAt& read, std::string* note) {
  auto range = go_data_range(size, read);
  if (!range) return std::nullopt;
  // The magic at a 16-byte boundary (debug/buildinfo's search), read in 64 KiB chunks that
  // overlap by a header so that one across a chunk's end is seen.
  const uint64_t limit = std::min<uint64_t>(range->len, range->section ? kGoSearch : kGoSearchStripped);
  std::optional<uint64_t> magic;
  std::string data;
  unsigned char flags = 0;
  for (uint64_t base = 0; base < limit && !magic; base += kGoSearch) {
    const uint64_t n = std::min<uint64_t>(kGoSearch + kGoHeader, range->len - base);
    if (n < kGoHeader || !read(range->off + base, static_cast<size_t>(n), data)) return std::nullopt;
    for (size_t from = 0;;) {
      size_t i = data.find(kGoMagic, from);
      if (i == std::string::npos || data.size() - i < kGoHeader) break;
      if (i % kGoAlign == 0) {
        magic = range->off + base + i;
        flags = static_cast<unsigned char>(data[i + 15]);
        break;
      }
      from = (i + kGoAlign - 1) & ~(kGoAlign - 1);
    }
  }
  if (!magic) return std::nullopt;
  if (!(flags & 2)) {
    if (note) *note = "Go build info in the pre-1.18 pointer format (not read)";
    return std::nullopt;
  }
  // Two varint-prefixed strings after the header; they may run past the search window.
  uint64_t pos = *magic + kGoHeader;
  const uint64_t end = range->off + range->len;
  auto next_string = [&](std::string& out) -> bool {
    if (pos >= end) return false;
    std::string lenbuf;
    if (!read(pos, static_cast<size_t>(std::min<uint64_t>(10, end - pos)), lenbuf)) return false;
    auto v = uvarint(lenbuf);
    if (!v || v->first > kGoMaxString || v->first > end - pos - v->second) return false;
    pos += v->second;
    if (!read(pos, static_cast<size_t>(v->first), out)) return false;
    pos += v->first;
    return true;
  };
  std::string vers, mod;
  if (!next_string(vers) || vers.rfind("go", 0) != 0) return std::nullopt;
  if (!next_string(mod)) mod.clear();
  return parse_go_modinfo(vers, mod);
}

GoBuildInfo parse_go_modinfo(std::string_view go_version, std::string_view modinfo) {
  GoBuildInfo bi;
  bi.go_version = std::string(go_version);
  std::string mod(modinfo);
  // The linker wraps modinfo in 16-byte sentinels; the text before the end one ends in '\n'.
  if (mod.size() >= 33 && mod[mod.size() - 17] == '\n') mod = mod.substr(16, mod.size() - 32);
  auto fields = [](const std::string& line) {
    std::vector<std::string> f;
    std::istringstream in(line);
    for (std::string x; std::getline(in, x, '\t');) f.push_back(x);
    return f;
  };
  GoModule* last = nullptr;
  std::istringstream in(mod);
  for (std::string line; std::getline(in, line);) {
    auto f = fields(line);
    if (f.empty()) continue;
    if (f[0] == "path" && f.size() >= 2) {
      bi.path = f[1];
    } else if ((f[0] == "mod" || f[0] == "dep") && f.size() >= 3 && !f[1].empty()) {
      GoModule m{f[1], f[2], f.size() >= 4 ? f[3] : ""};
      if (f[0] == "mod") {
        bi.main = m;
        last = &*bi.main;
      } else {
        bi.deps.push_back(m);
        last = &bi.deps.back();
      }
    } else if (f[0] == "=>" && f.size() >= 2 && last) {
      // A versioned replacement is what was built; a local directory keeps the original.
      if (f.size() >= 3 && !f[2].empty() && !f[1].empty())
        *last = {f[1], f[2], f.size() >= 4 ? f[3] : ""};
      last = nullptr;
    } else {
      last = nullptr;
    }
  }
  return bi;
}

// ---- npm, python ---------------------------------------------------------------------------

std::optional<Package> parse_package_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto n = j.find("name"), v = j.find("version");
  if (n == j.end() || v == j.end() || !n->is_string() || !v->is_string()) return std::nullopt;
  Package p;
  p.type = "npm";
  p.name = n->get<std::string>();
  p.version = v->get<std::string>();
  if (p.name.empty() || p.version.empty()) return std::nullopt;
  return p;
}

namespace {

void lock_v1_deps(const json& deps, std::vector<Package>& out, int depth) {
  if (!deps.is_object() || depth > 64) return;
  for (auto it = deps.begin(); it != deps.end(); ++it) {
    if (!it->is_object()) continue;
    auto v = it->find("version");
    if (v != it->end() && v->is_string() && !it.key().empty()) {
      std::string ver = v->get<std::string>();
      // "file:..", "git+https://..": not a registry version.
      if (!ver.empty() && ver.find(':') == std::string::npos)
        out.push_back({"npm", it.key(), ver, "", "", "", ""});
    }
    if (auto d = it->find("dependencies"); d != it->end()) lock_v1_deps(*d, out, depth + 1);
  }
}

}  // namespace

std::vector<Package> parse_package_lock(std::string_view text) {
  std::vector<Package> out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  if (auto pk = j.find("packages"); pk != j.end() && pk->is_object()) {
    for (auto it = pk->begin(); it != pk->end(); ++it) {
      const std::string& key = it.key();
      if (key.empty() || !it->is_object()) continue;  // "": the project itself
      auto at = key.rfind("node_modules/");
      if (at == std::string::npos) continue;   // a workspace folder
      if (it->value("link", false)) continue;  // a symlink to a workspace: listed at its target
      std::string name = it->value("name", key.substr(at + 13));
      auto v = it->find("version");
      if (v == it->end() || !v->is_string() || name.empty()) continue;
      out.push_back({"npm", name, v->get<std::string>(), "", "", "", ""});
    }
    return out;
  }
  if (auto d = j.find("dependencies"); d != j.end()) lock_v1_deps(*d, out, 0);
  return out;
}

std::optional<Package> parse_python_metadata(std::string_view text) {
  Package p;
  p.type = "pypi";
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;  // the headers end; the description follows
    auto c = line.find(':');
    if (c == std::string::npos || line[0] == ' ' || line[0] == '\t') continue;
    std::string k = lower(line.substr(0, c)), v = line.substr(c + 1);
    while (!v.empty() && v[0] == ' ') v.erase(0, 1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    if (k == "name" && p.name.empty())
      p.name = v;
    else if (k == "version" && p.version.empty())
      p.version = v;
  }
  if (p.name.empty() || p.version.empty()) return std::nullopt;
  return p;
}

// ---- the walk ------------------------------------------------------------------------------

namespace {

constexpr uint64_t kMaxEntries = 4'000'000;  // past this the walk stops (noted)
constexpr size_t kMaxDepth = 96;
constexpr uint64_t kMaxMetadata = 4 << 20;    // package.json, METADATA, status.d files
constexpr uint64_t kMaxLock = 64 << 20;       // package-lock.json, dpkg status, apk db
constexpr uint64_t kMaxRpmdb = 512ull << 20;  // rpmdb.sqlite (a full Fedora's is ~100 MiB)
constexpr size_t kMaxNotes = 100;
constexpr uint64_t kMaxTotal = 2048ull << 20;  // all metadata files together (noted when hit)

class Scanner {
 public:
  explicit Scanner(int root) : root_(root) {}

  ScanReport run() {
    auto t0 = std::chrono::steady_clock::now();
    std::string os;
    for (const char* p : {"etc/os-release", "usr/lib/os-release"})
      if (read_beneath(p, 1 << 20, &os)) break;
    distro_ = os_release_id(os);
    scan_fixed_paths();
    UniqueFd top(::openat(root_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (top.valid()) {
      std::vector<std::string> path;
      walk(top.get(), path);
    } else {
      note("the image root could not be opened: " + std::string(std::strerror(errno)));
    }
    std::sort(r_.packages.begin(), r_.packages.end(), [](const Package& a, const Package& b) {
      return std::tie(a.type, a.name, a.version, a.arch, a.location) <
             std::tie(b.type, b.name, b.version, b.arch, b.location);
    });
    r_.packages.erase(std::unique(r_.packages.begin(), r_.packages.end(),
                                  [](const Package& a, const Package& b) {
                                    return a.type == b.type && a.name == b.name &&
                                           a.version == b.version && a.arch == b.arch &&
                                           a.location == b.location;
                                  }),
                      r_.packages.end());
    if (dropped_notes_) r_.notes.push_back("and " + std::to_string(dropped_notes_) + " more notes");
    r_.stats.millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    return std::move(r_);
  }

 private:
  // Reads a regular file at `rel` beneath the root, never through a symlink; false when it is
  // missing, not a regular file, or larger than `max` (noted).
  bool read_beneath(const std::string& rel, uint64_t max, std::string* out) {
    open_how how{};
    how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    // O_PATH first so that a FIFO or device is never opened for reading.
    open_how path_how = how;
    path_how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd p(
        static_cast<int>(::syscall(SYS_openat2, root_, rel.c_str(), &path_how, sizeof path_how)));
    if (!p.valid()) return false;
    struct stat st;
    if (::fstat(p.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    UniqueFd f(static_cast<int>(::syscall(SYS_openat2, root_, rel.c_str(), &how, sizeof how)));
    if (!f.valid()) return false;
    return read_all(f.get(), "/" + rel, max, out);
  }

  bool read_all(int fd, const std::string& where, uint64_t max, std::string* out) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (r_.stats.bytes_read + static_cast<uint64_t>(st.st_size) > kMaxTotal) {
      if (!budget_noted_)
        note(where + " and later files: over the scanner's total of " + std::to_string(kMaxTotal) +
             " bytes read (not read)");
      budget_noted_ = true;
      return false;
    }
    if (static_cast<uint64_t>(st.st_size) > max) {
      note(where + ": " + std::to_string(st.st_size) + " bytes, over the scanner's limit of " +
           std::to_string(max) + " (not read)");
      return false;
    }
    out->clear();
    out->reserve(static_cast<size_t>(st.st_size));
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) break;
      out->append(buf, static_cast<size_t>(n));
      if (out->size() > max) return false;  // grew while read
    }
    ++r_.stats.files_read;
    r_.stats.bytes_read += out->size();
    return true;
  }

  void add(std::vector<Package> pkgs, const std::string& where) {
    for (auto& p : pkgs) {
      p.location = where;
      r_.packages.push_back(std::move(p));
    }
  }

  void scan_fixed_paths() {
    std::string text;
    if (read_beneath("var/lib/dpkg/status", kMaxLock, &text))
      add(parse_dpkg_status(text, distro_.empty() ? "debian" : distro_), "/var/lib/dpkg/status");
    if (read_beneath("lib/apk/db/installed", kMaxLock, &text))
      add(parse_apk_installed(text, distro_.empty() ? "alpine" : distro_), "/lib/apk/db/installed");
    // Fedora >= 36 keeps the db in /usr/lib/sysimage/rpm (/var/lib/rpm a symlink to it).
    bool rpm_read = false;
    for (const char* p : {"usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"}) {
      if (rpm_read || !read_beneath(p, kMaxRpmdb, &text)) continue;
      rpm_read = true;
      const std::string where = std::string("/") + p;
      struct stat wal;
      if (::fstatat(root_, (std::string(p) + "-wal").c_str(), &wal, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(wal.st_mode) && wal.st_size > 0)
        note(where + "-wal: a write-ahead log not checkpointed into the db (not read)");
      size_t bad = 0;
      auto headers = read_rpmdb_sqlite(std::move(text), &bad);
      if (!headers.ok()) {
        note(where + ": " + headers.error().message());
        continue;
      }
      if (bad) note(where + ": " + std::to_string(bad) + " package headers could not be read");
      std::vector<Package> pkgs;
      for (const auto& h : *headers) {
        if (h.name == "gpg-pubkey") continue;  // an imported signing key, not a package
        Package pk;
        pk.type = "rpm";
        pk.name = h.name;
        pk.version = h.release.empty() ? h.version : h.version + "-" + h.release;
        pk.arch = h.arch;
        pk.distro = distro_;
        if (h.epoch) pk.epoch = std::to_string(*h.epoch);
        pkgs.push_back(std::move(pk));
      }
      add(std::move(pkgs), where);
    }
    for (const char* p : {"var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages",
                          "var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db"}) {
      struct stat st;
      if (::fstatat(root_, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        note(std::string("/") + p + ": an rpm " +
             (std::string(p).ends_with(".db") ? "ndb" : "BerkeleyDB") +
             " database, not supported (only rpmdb.sqlite is read)");
    }
  }

  static std::string join(const std::vector<std::string>& path, const std::string& name) {
    std::string s;
    for (const auto& c : path) s += "/" + c;
    return s + "/" + name;
  }

  static bool has_python_root(const std::vector<std::string>& path) {
    return std::any_of(path.begin(), path.end(), [](const std::string& c) {
      return c == "site-packages" || c == "dist-packages";
    });
  }

  // Opens `name` in `dir` for reading, never through a symlink nor a FIFO/device.
  static UniqueFd open_file(int dir, const std::string& name) {
    return UniqueFd(
        ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  }

  void file(int dir, const std::vector<std::string>& path, const std::string& name,
            const struct stat& st) {
    const size_t d = path.size();
    std::string text;
    if (name == "package.json" && d >= 2 &&
        (path[d - 2] == "node_modules" ||
         (d >= 3 && path[d - 2][0] == '@' && path[d - 3] == "node_modules"))) {
      UniqueFd f = open_file(dir, name);
      if (f.valid() && read_all(f.get(), join(path, name), kMaxMetadata, &text))
        if (auto p = parse_package_json(text)) add({*p}, join(path, name));
      return;
    }
    if (name == "package-lock.json") {
      // Installed packages are what an image holds (syft's image catalogers read package.json
      // files); a lockfile counts only for a project whose node_modules is not in the image.
      struct stat nm;
      if (::fstatat(dir, "node_modules", &nm, AT_SYMLINK_NOFOLLOW) == 0) return;
      UniqueFd f = open_file(dir, name);
      if (f.valid() && read_all(f.get(), join(path, name), kMaxLock, &text))
        add(parse_package_lock(text), join(path, name));
      return;
    }
    if (d >= 1 && has_python_root(path) &&
        ((name == "METADATA" && path[d - 1].ends_with(".dist-info")) ||
         (name == "PKG-INFO" && path[d - 1].ends_with(".egg-info")) ||
         (name.ends_with(".egg-info")))) {
      UniqueFd f = open_file(dir, name);
      if (f.valid() && read_all(f.get(), join(path, name), kMaxMetadata, &text))
        if (auto p = parse_python_metadata(text)) add({*p}, join(path, name));
      return;
    }
    if (d == 4 && path[0] == "var" && path[1] == "lib" && path[2] == "dpkg" &&
        path[3] == "status.d") {
      if (name.find('.') != std::string::npos) return;  // NAME.md5sums beside NAME
      UniqueFd f = open_file(dir, name);
      if (f.valid() && read_all(f.get(), join(path, name), kMaxMetadata, &text))
        add(parse_dpkg_status(text, distro_.empty() ? "debian" : distro_), join(path, name));
      return;
    }
    if ((st.st_mode & 0111) && st.st_size >= 64) go_binary(dir, path, name, st);
  }

  void go_binary(int dir, const std::vector<std::string>& path, const std::string& name,
                 const struct stat& st) {
    UniqueFd f = open_file(dir, name);
    if (!f.valid()) return;
    struct stat fst;
    if (::fstat(f.get(), &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino) return;
    ++r_.stats.executables;
    const uint64_t size = static_cast<uint64_t>(fst.st_size);
    ReadAt read = [&](uint64_t off, size_t n, std::string& out) -> bool {
      if (off > size || n > size - off) return false;
      out.resize(n);
      size_t got = 0;
      while (got < n) {
        ssize_t k = ::pread(f.get(), out.data() + got, n - got, static_cast<off_t>(off + got));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        got += static_cast<size_t>(k);
      }
      r_.stats.bytes_read += n;
      return true;
    };
    std::string magic;
    if (!read(0, 4, magic) || magic !=
                                  "\x7f"
                                  "ELF")
      return;
    ++r_.stats.elf;
    std::string why;
    auto bi = read_go_buildinfo(size, read, &why);
    const std::string where = join(path, name);
    if (!why.empty()) note(where + ": " + why);
    if (!bi) return;
    std::vector<Package> pkgs;
    if (bi->main && !bi->main->path.empty())
      pkgs.push_back({"golang", bi->main->path, bi->main->version, "", "", "", ""});
    for (const auto& m : bi->deps) pkgs.push_back({"golang", m.path, m.version, "", "", "", ""});
    // The toolchain's standard library, as syft lists it (pkg:golang/stdlib@1.21.5).
    std::string v = bi->go_version.substr(2);
    v = v.substr(0, v.find(' '));
    if (!v.empty()) pkgs.push_back({"golang", "stdlib", "go" + v, "", "", "", ""});
    add(std::move(pkgs), where);
  }

  void walk(int dir, std::vector<std::string>& path) {
    if (stopped_) return;
    if (path.size() >= kMaxDepth) {
      note(join(path, "") + ": deeper than " + std::to_string(kMaxDepth) +
           " directories (not walked)");
      return;
    }
    ++r_.stats.dirs;
    int dfd = ::dup(dir);
    if (dfd < 0) return;
    DIR* dp = ::fdopendir(dfd);
    if (!dp) {
      ::close(dfd);
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dp)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(std::move(n));
      if (++r_.stats.entries > kMaxEntries) {
        stopped_ = true;
        note("more than " + std::to_string(kMaxEntries) + " files: the walk stopped early");
        break;
      }
    }
    ::closedir(dp);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      if (stopped_) return;
      if (path.empty() && (n == "proc" || n == "sys" || n == "dev")) continue;
      struct stat st;
      if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        UniqueFd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) continue;
        path.push_back(n);
        walk(sub.get(), path);
        path.pop_back();
      } else if (S_ISREG(st.st_mode)) {
        file(dir, path, n, st);
      }
      // Symlinks, devices, FIFOs, sockets (and whiteouts, should a view show one): not read.
    }
  }

  // At most kMaxNotes notes (a hostile image could make one per file); then one that counts the
  // rest.
  void note(std::string text) {
    if (r_.notes.size() < kMaxNotes)
      r_.notes.push_back(std::move(text));
    else
      ++dropped_notes_;
  }

  int root_;
  std::string distro_;
  uint64_t dropped_notes_ = 0;
  bool stopped_ = false;
  bool budget_noted_ = false;
  ScanReport r_;
};

}  // namespace

ScanReport scan_image(int root_fd) { return Scanner(root_fd).run(); }

json report_to_json(const ScanReport& r) {
  json pk = json::array();
  for (const auto& p : r.packages)
    pk.push_back({{"type", p.type},
                  {"name", p.name},
                  {"version", p.version},
                  {"arch", p.arch},
                  {"distro", p.distro},
                  {"epoch", p.epoch},
                  {"location", p.location}});
  const auto& s = r.stats;
  return {{"packages", pk},
          {"notes", r.notes},
          {"stats",
           {{"dirs", s.dirs},
            {"entries", s.entries},
            {"executables", s.executables},
            {"elf", s.elf},
            {"files_read", s.files_read},
            {"bytes_read", s.bytes_read},
            {"millis", s.millis}}}};
}

ScanReport report_from_json(const json& j) {
  ScanReport r;
  if (!j.is_object()) return r;
  auto str = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto pk = j.find("packages"); pk != j.end() && pk->is_array())
    for (const auto& p : *pk)
      if (p.is_object())
        r.packages.push_back({str(p, "type"), str(p, "name"), str(p, "version"), str(p, "arch"),
                              str(p, "distro"), str(p, "epoch"), str(p, "location")});
  if (auto n = j.find("notes"); n != j.end() && n->is_array())
    for (const auto& x : *n)
      if (x.is_string()) r.notes.push_back(x.get<std::string>());
  if (auto s = j.find("stats"); s != j.end() && s->is_object()) {
    auto num = [&](const char* k) -> uint64_t {
      auto it = s->find(k);
      return it != s->end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
    };
    r.stats = {num("dirs"),
               num("entries"),
               num("executables"),
               num("elf"),
               num("files_read"),
               num("bytes_read"),
               static_cast<int64_t>(num("millis"))};
  }
  return r;
}

std::string describe_stats(const ScanStats& s) {
  char mib[32];
  std::snprintf(mib, sizeof mib, "%.1f", static_cast<double>(s.bytes_read) / (1 << 20));
  return std::to_string(s.entries) + " entries in " + std::to_string(s.dirs) + " directories, " +
         std::to_string(s.executables) + " executables looked at (" + std::to_string(s.elf) +
         " ELF), " + std::to_string(s.files_read) + " metadata files, " + mib + " MiB read, " +
         std::to_string(s.millis) + " ms";
}

}  // namespace ocib::exporter
