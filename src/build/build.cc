#include "build/build.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <semaphore>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "base/cancel.h"
#include "base/fs.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/sha256.h"
#include "build/cache_io.h"
#include "build/copy.h"
#include "build/durations.h"
#include "build/hash_cache.h"
#include "build/pack_snapshot.h"
#include "build/images.h"
#include "layers/unpack.h"
#include "build/progress.h"
#include "dag/scheduler.h"
#include "dockerfile/dockerfile.h"
#include "dockerfile/dockerignore.h"
#include "layers/layers.h"
#include "oci/image.h"
#include "oci/layout.h"
#include "store/maintenance.h"
#include "store/store.h"

namespace ocib::build {

using nlohmann::json;

namespace {

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Bumped whenever what a cache key stands for changes.
constexpr const char* kKeyVersion = "ocib-cache-v1";

double epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

struct LayerResult {
  std::string snapshot;
  std::string digest;
  std::string diff_id;
  std::string media_type;
  int64_t size = 0;
  int64_t created = 0;  // unix seconds
};

/// A vertex that produces a layer (RUN or COPY).
struct Step {
  /// kWorkdir: WORKDIR's mkdir. kLinked: a COPY --link layer (made by `link_src`, on an empty
  /// root) stacked on `parent`; it runs nothing.
  enum class Kind { kRun, kCopy, kBase, kWorkdir, kLinked };
  Kind kind = Kind::kRun;
  int display_id = 0;
  std::string name;  // "[b1 2/2] RUN sleep 1"
  std::string stage;
  std::string key;
  Step* parent = nullptr;  // the previous layer of the same image; nullptr: scratch
  dag::VertexId vid = 0;
  std::vector<Step*> deps;

  // RUN
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string user;
  std::string cwd = "/";
  sandbox::Network network = sandbox::Network::kNone;
  /// A RUN for another architecture than the host's: its binaries run through binfmt_misc.
  std::optional<oci::Platform> emulated;
  /// Proxy build args: reach the command but neither the cache key nor the history.
  std::vector<std::string> proxy_env;

  /// RUN --mount entries, resolved at plan time except for what the store provides.
  struct RunMount {
    std::string type;  // cache, bind, tmpfs, secret, pipe (a heredoc script)
    std::string target;
    std::string id;             // cache id / secret id
    std::string source;         // bind: path inside the source; pipe: script content
    bool rw = false;
    bool required = false;      // secret
    std::string env;            // secret: also (or only) as this environment variable
    uint64_t size = 0;          // tmpfs
    uint32_t mode = 0;          // cache/secret mode, 0 = default
    bool from_context = true;   // bind
    std::string context_dir;    // bind from a named --build-context directory ("" = the context)
    int context_fd = -1;
    Step* from_top = nullptr;   // bind from a stage
    bool from_stage = false;
    bool locked = false;        // cache sharing=locked
    std::optional<uint32_t> uid, gid;  // cache (when it is created) / secret owner; default 0
  };
  std::vector<RunMount> mounts;
  bool insecure = false;  // RUN --security=insecure (with --allow security.insecure)

  // COPY
  CopyOp copy;
  std::string chown_spec;  // --chown as written after expansion; resolved at run time
  bool from_context = true;
  std::string context_dir;   // from_context: a named --build-context directory ("" = the context)
  Step* from_top = nullptr;  // top step of the source stage (nullptr: an empty stage)
  Step* user_from = nullptr;  // COPY --link: the image whose /etc/passwd resolves --chown
  Step* link_src = nullptr;   // kLinked

  // WORKDIR
  std::string workdir;

  // Result, written by the vertex before it completes; read by dependents afterwards.
  LayerResult result;
  bool cached = false;
  bool ran = false;
  /// Packing the snapshot into a layer blob runs off the critical path (the next step only
  /// needs the snapshot); export waits for it. Fills result.digest/diff_id/size/media_type.
  std::shared_future<Status> packed;
};

struct HistoryItem {
  std::string created_by;
  Step* step = nullptr;  // the layer it made; nullptr: an empty_layer entry
  std::string created;   // fixed time (history inherited from a base image), else derived
  bool empty_layer = true;
};

/// A staging directory that is removed unless released; files in it may belong to
/// subordinate ids, which only a user namespace can delete for an unprivileged caller.
class Staging {
 public:
  Staging(std::string path, const IdMapping& ids) : path_(std::move(path)), ids_(ids) {}
  ~Staging() {
    if (!path_.empty() && !sandbox::remove_tree(path_, ids_).ok()) log::warn("could not remove " + path_);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  std::string release() { return std::exchange(path_, {}); }

 private:
  std::string path_;
  const IdMapping& ids_;
};

struct StageState {
  bool planned = false;
  bool planning = false;
  std::string display;  // "b1" or "stage-2"
  Step* top = nullptr;
  oci::RunConfig config;
  std::vector<HistoryItem> history;
  std::map<std::string, std::string> args;  // ARGs in scope with their values
  std::string base_created;  // `created` of the base image, for images that add no layer
  oci::Platform platform;    // FROM --platform, the base stage's, else the build's target
};

std::vector<std::string> lowers_of(const store::Store& st, const Step* s) {
  std::vector<std::string> out;
  for (; s; s = s->parent) out.push_back(st.snapshot_path(s->result.snapshot));
  return out;
}

// Reads a file of the image whose layers are `lowers` (topmost first), honouring whiteouts of
// the file itself. Used for /etc/passwd and /etc/group.
// Resolved beneath each layer directory without following any symlink (an image's `etc ->
// /root` must not make ocib read the host's files), and at most 16 MiB.
std::optional<std::string> read_image_file(const std::vector<std::string>& lowers, const std::string& path) {
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  for (const auto& l : lowers) {
    UniqueFd dir(::open(l.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) continue;
    open_how how{};
    // O_PATH first: a device node or FIFO in the image is looked at, never opened.
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int pfd = static_cast<int>(::syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof how));
    if (pfd < 0) {
      if (errno == ENOENT) continue;
      return std::nullopt;  // a symlink on the way (or in this layer's place): not followed
    }
    UniqueFd pf(pfd);
    struct stat st;
    if (::fstat(pfd, &st) != 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return std::nullopt;
    if (!S_ISREG(st.st_mode) || st.st_size > (16 << 20)) return std::nullopt;
    UniqueFd f(::open(("/proc/self/fd/" + std::to_string(pfd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.valid()) return std::nullopt;
    std::string data;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(f.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::nullopt;
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > (16u << 20)) return std::nullopt;
    }
    return data;
  }
  return std::nullopt;
}

// The text a cache key is hashed from: the JSON as before for valid UTF-8 (existing keys stay);
// a key with other bytes (a Latin-1 RUN) is hashed from its CBOR encoding, which keeps every
// byte: two commands differing only in invalid bytes never share a key (a replacing dump would
// map both to U+FFFD).
std::string key_text(const json& k) {
  try {
    return k.dump();
  } catch (const json::type_error&) {
    std::vector<uint8_t> cbor = json::to_cbor(k);
    return "cbor:" + std::string(cbor.begin(), cbor.end());
  }
}

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long v = std::stoul(s);
  if (v > 0xffffffffUL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// Looks `name` up in a passwd/group formatted file: returns (id field 3, gid field 4 if any).
std::optional<std::pair<uint32_t, uint32_t>> lookup_db(const std::optional<std::string>& db,
                                                        const std::string& name) {
  if (!db) return std::nullopt;
  size_t pos = 0;
  while (pos < db->size()) {
    size_t end = db->find('\n', pos);
    if (end == std::string::npos) end = db->size();
    std::string line = db->substr(pos, end - pos);
    pos = end + 1;
    std::vector<std::string> f;
    size_t i = 0;
    while (true) {
      size_t j = line.find(':', i);
      f.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    if (f.size() >= 3 && f[0] == name) {
      auto id = parse_id(f[2]);
      if (!id) continue;
      uint32_t gid = f.size() >= 4 ? parse_id(f[3]).value_or(*id) : *id;
      return std::make_pair(*id, gid);
    }
  }
  return std::nullopt;
}

// "user[:group]" -> uid, gid, resolving names through the image's /etc/passwd and /etc/group.
Result<std::pair<uint32_t, uint32_t>> resolve_user(const std::vector<std::string>& lowers,
                                                    const std::string& spec) {
  std::string u = spec.empty() ? "0" : spec;
  std::string g;
  if (auto c = u.find(':'); c != std::string::npos) {
    g = u.substr(c + 1);
    u = u.substr(0, c);
  }
  uint32_t uid = 0, gid = 0;
  if (auto id = parse_id(u)) {
    uid = *id;
    gid = 0;
    if (g.empty()) {
      // A numeric uid takes its primary group from passwd when listed there.
      auto passwd = read_image_file(lowers, "/etc/passwd");
      if (passwd) {
        size_t pos = 0;
        while (pos < passwd->size()) {
          size_t end = passwd->find('\n', pos);
          if (end == std::string::npos) end = passwd->size();
          std::string line = passwd->substr(pos, end - pos);
          pos = end + 1;
          auto a = line.find(':'), b = line.find(':', a + 1), c2 = line.find(':', b + 1),
               d = line.find(':', c2 + 1);
          if (a == std::string::npos || b == std::string::npos || c2 == std::string::npos) continue;
          if (line.substr(b + 1, c2 - b - 1) == u && d != std::string::npos)
            gid = parse_id(line.substr(c2 + 1, d - c2 - 1)).value_or(0);
        }
      }
    }
  } else if (u == "root") {
    uid = 0;
  } else {
    auto ent = lookup_db(read_image_file(lowers, "/etc/passwd"), u);
    if (!ent) return Error::invalid("unable to find user " + u + ": no matching entries in passwd file");
    uid = ent->first;
    gid = ent->second;
  }
  if (!g.empty()) {
    if (auto id = parse_id(g)) {
      gid = *id;
    } else {
      auto ent = lookup_db(read_image_file(lowers, "/etc/group"), g);
      if (!ent) return Error::invalid("unable to find group " + g + ": no matching entries in group file");
      gid = ent->first;
    }
  }
  return std::make_pair(uid, gid);
}

// The supplementary groups of a RUN's user, as current BuildKit sets them (runc's GetExecUser,
// plus the primary group since CVE-2023-25173): the primary gid first; then, for a user found in
// the image's /etc/passwd (by name, or by uid) without an explicit group, every group of
// /etc/group that lists the name as a member. BuildKit's testUserAdditionalGids.
std::vector<uint32_t> supplementary_groups(const std::vector<std::string>& lowers, const std::string& spec,
                                           uint32_t primary_gid) {
  std::string u = spec.empty() ? "root" : spec;
  std::vector<uint32_t> out = {primary_gid};
  if (u.find(':') != std::string::npos) return out;
  auto split = [](const std::string& line, char sep) {
    std::vector<std::string> f;
    for (size_t i = 0;;) {
      size_t j = line.find(sep, i);
      f.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    return f;
  };
  auto lines = [&](const std::optional<std::string>& db) {
    std::vector<std::vector<std::string>> rows;
    if (!db) return rows;
    for (const auto& line : split(*db, '\n'))
      if (!line.empty() && line[0] != '#') rows.push_back(split(line, ':'));
    return rows;
  };
  std::string name;
  const bool numeric = parse_id(u).has_value();
  for (const auto& f : lines(read_image_file(lowers, "/etc/passwd")))
    if (f.size() >= 3 && (numeric ? f[2] == u : f[0] == u)) {
      name = f[0];
      break;
    }
  if (name.empty()) return out;
  for (const auto& f : lines(read_image_file(lowers, "/etc/group"))) {
    if (f.size() < 4) continue;
    auto gid = parse_id(f[2]);
    if (!gid || *gid == primary_gid) continue;
    for (const auto& m : split(f[3], ','))
      if (m == name && std::find(out.begin(), out.end(), *gid) == out.end()) out.push_back(*gid);
  }
  return out;
}

/// Reads a step's output pipe on its own thread and forwards lines to the reporter.
class OutputPump {
 public:
  OutputPump(Reporter& r, int id) : reporter_(r), id_(id) {}
  ~OutputPump() { stop(); }

  Status start() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
    read_.reset(p[0]);
    write_.reset(p[1]);
    int e = eventfd(0, EFD_CLOEXEC);
    if (e < 0) return Error::from_errno("eventfd", errno);
    stop_.reset(e);
    thread_ = std::thread([this] { loop(); });
    return {};
  }
  int write_fd() const { return write_.get(); }

  /// Closes our write end and drains what is buffered. Stray holders of the write end (a
  /// concurrent sandbox's forked helper) cannot delay this: we stop on the event, not on EOF.
  void stop() {
    if (!thread_.joinable()) return;
    write_.reset();
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
  std::string last_lines() const {
    std::string out;
    for (const auto& l : tail_) out += l + "\n";
    return out;
  }

 private:
  void loop() {
    std::string buf;
    char chunk[8192];
    bool stopping = false;
    for (;;) {
      struct pollfd fds[2] = {{read_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      int rc = poll(fds, 2, stopping ? 0 : -1);
      if (rc < 0 && errno == EINTR) continue;
      if (fds[1].revents & POLLIN) stopping = true;
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        ssize_t n = ::read(read_.get(), chunk, sizeof chunk);
        if (n > 0) {
          buf.append(chunk, static_cast<size_t>(n));
          flush_lines(buf, false);
          continue;
        }
        if (n == 0) break;  // EOF
      }
      if (stopping && rc == 0) break;
      if (stopping && !(fds[0].revents & POLLIN)) break;
    }
    flush_lines(buf, true);
  }
  void flush_lines(std::string& buf, bool all) {
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      emit(buf.substr(0, pos));
      buf.erase(0, pos + 1);
    }
    if (all && !buf.empty()) {
      emit(buf);
      buf.clear();
    }
  }
  void emit(const std::string& line) {
    reporter_.log(id_, line);
    tail_.push_back(line);
    if (tail_.size() > 10) tail_.pop_front();
  }

  Reporter& reporter_;
  int id_;
  UniqueFd read_, write_, stop_;
  std::thread thread_;
  std::deque<std::string> tail_;
};

// Adapts a Status-returning function to Spec::in_sandbox: an error becomes the step's output
// (read back by the caller through the output pipe) and exit status 1.
std::function<int(const std::vector<int>&)> reporting(std::function<Status(const std::vector<int>&)> fn) {
  return [fn = std::move(fn)](const std::vector<int>& fds) -> int {
    Status st = fn(fds);
    if (st.ok()) return 0;
    std::string msg = st.error().str() + "\n";
    (void)!::write(2, msg.data(), msg.size());
    return 1;
  };
}

/// A sandboxed run whose output went to the reporter; `tail` holds its last lines.
struct SandboxRun {
  sandbox::Outcome outcome;
  std::string tail;
};

Result<SandboxRun> run_reported(sandbox::Spec& spec, const IdMapping& ids, Reporter& reporter, int id) {
  OutputPump pump(reporter, id);
  OCIB_TRY(pump.start());
  spec.output_fd = pump.write_fd();
  auto outcome = sandbox::run(spec, ids);
  pump.stop();
  if (!outcome.ok()) return std::move(outcome).error();
  std::string tail = pump.last_lines();
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  return SandboxRun{*outcome, tail};
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string platform_string(const oci::Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

oci::Platform host_platform() { return normalize_platform(oci::Platform::host()); }

bool same_platform(const oci::Platform& a, const oci::Platform& b) {
  oci::Platform x = normalize_platform(a), y = normalize_platform(b);
  return x.os == y.os && x.architecture == y.architecture && x.variant == y.variant;
}

// Whether the host's CPU runs binaries of `p` without emulation.
bool runs_natively(const oci::Platform& p) {
  oci::Platform h = host_platform(), n = normalize_platform(p);
  return n.os == h.os && (n.architecture == h.architecture || (h.architecture == "amd64" && n.architecture == "386"));
}

Result<oci::Platform> parse_platform(const std::string& spec) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    size_t j = spec.find('/', i);
    parts.push_back(spec.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (parts.size() > 3 || std::any_of(parts.begin(), parts.end(), [](const std::string& x) { return x.empty(); }))
    return Error::invalid("invalid platform \"" + spec + "\" (OS/ARCH[/VARIANT], e.g. linux/arm64)");
  oci::Platform p;
  if (parts.size() == 1) {
    p.architecture = parts[0];
  } else {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  }
  std::transform(p.os.begin(), p.os.end(), p.os.begin(), ::tolower);
  std::transform(p.architecture.begin(), p.architecture.end(), p.architecture.begin(), ::tolower);
  if (p.os != "linux") return Error::invalid("platform \"" + spec + "\": only linux images can be built");
  return normalize_platform(p);
}

// ELF identification of an architecture's executables: class (1 = 32-bit, 2 = 64-bit), data
// (1 = little, 2 = big endian), e_machine; and the name qemu-user uses for it.
struct ElfId {
  unsigned char cls, data;
  uint16_t machine;
  const char* qemu;
};

std::optional<ElfId> elf_id(const oci::Platform& p) {
  static const std::map<std::string, ElfId> ids = {
      {"amd64", {2, 1, 62, "x86_64"}},     {"386", {1, 1, 3, "i386"}},          {"arm64", {2, 1, 183, "aarch64"}},
      {"arm", {1, 1, 40, "arm"}},          {"riscv64", {2, 1, 243, "riscv64"}}, {"s390x", {2, 2, 22, "s390x"}},
      {"ppc64le", {2, 1, 21, "ppc64le"}},  {"ppc64", {2, 2, 21, "ppc64"}},      {"mips64le", {2, 1, 8, "mips64el"}},
      {"mips64", {2, 2, 8, "mips64"}},     {"loong64", {2, 1, 258, "loongarch64"}}};
  auto it = ids.find(normalize_platform(p).architecture);
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> unhex(const std::string& h) {
  if (h.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) {
    char* end = nullptr;
    std::string byte = h.substr(i, 2);
    long v = std::strtol(byte.c_str(), &end, 16);
    if (*end) return std::nullopt;
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// A RUN for a foreign architecture executes its binaries through a binfmt_misc handler
// (qemu-user). It must have the F (fix-binary) flag: the kernel then opens the interpreter at
// registration, so it works inside the step's root, where the host's /usr/bin is not visible.
Status check_emulation(const oci::Platform& p) {
  const std::string dir = "/proc/sys/fs/binfmt_misc";
  std::string arch = platform_string(normalize_platform(p));
  auto id = elf_id(p);
  if (!id) return Error(Errc::kUnsupported, "cannot run RUN steps for " + arch + ": ocib does not know its executable format");
  std::string how =
      "register qemu-user for it with the F (fix-binary) flag, e.g. as root: `apt-get install qemu-user-static` "
      "(Debian/Ubuntu register qemu-" + std::string(id->qemu) + " through systemd-binfmt or binfmt-support: "
      "`systemctl restart systemd-binfmt` or `update-binfmts --enable qemu-" + id->qemu +
      "`), or write its line from /usr/lib/binfmt.d/qemu-" + id->qemu + ".conf to " + dir +
      "/register (mount it first with `mount -t binfmt_misc binfmt_misc " + dir +
      "`). Stages that only need the build machine can use FROM --platform=$BUILDPLATFORM";
  auto status = fs::read_file(dir + "/status");
  if (!status.ok())
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation, but binfmt_misc is not mounted at " + dir +
                                         "; " + how);
  if (status->rfind("enabled", 0) != 0)
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation, but binfmt_misc is disabled (" + dir +
                                         "/status); enable it with `echo 1 > " + dir + "/status`");
  // What a typical executable's ELF header starts with (e_type EXEC), to match each handler's
  // magic and mask against.
  std::string hdr(20, '\0');
  hdr[0] = 0x7f, hdr[1] = 'E', hdr[2] = 'L', hdr[3] = 'F';
  hdr[4] = static_cast<char>(id->cls), hdr[5] = static_cast<char>(id->data), hdr[6] = 1;
  bool le = id->data == 1;
  hdr[le ? 16 : 17] = 2;
  hdr[le ? 18 : 19] = static_cast<char>(id->machine & 0xff);
  hdr[le ? 19 : 18] = static_cast<char>(id->machine >> 8);
  std::vector<std::string> entries;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) entries.push_back(e.path().filename());
  if (ec) return Error(Errc::kIo, "list " + dir + ": " + ec.message());
  std::string without_f;
  for (const auto& name : entries) {
    if (name == "status" || name == "register") continue;
    auto text = fs::read_file(fs::join(dir, name));
    if (!text.ok()) continue;
    std::map<std::string, std::string> f;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      std::string line = text->substr(pos, end - pos);
      pos = end + 1;
      auto sp = line.find(' ');
      if (line == "enabled" || line == "disabled") f["state"] = line;
      else if (sp != std::string::npos) f[line.substr(0, sp)] = line.substr(sp + 1);
    }
    if (f["state"] != "enabled" || f.count("magic") == 0 || (f.count("offset") && f["offset"] != "0")) continue;
    auto magic = unhex(f["magic"]);
    auto mask = f.count("mask") ? unhex(f["mask"]) : std::optional<std::string>(std::string(magic ? magic->size() : 0, '\xff'));
    if (!magic || !mask || magic->size() > hdr.size() || mask->size() < magic->size()) continue;
    bool match = true;
    for (size_t i = 0; i < magic->size() && match; ++i) match = (hdr[i] & (*mask)[i]) == (*magic)[i];
    if (!match) continue;
    if (f["flags:"].find('F') != std::string::npos) return {};
    without_f = name + " (" + f["interpreter"] + ")";
  }
  if (!without_f.empty())
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation: the binfmt_misc handler " + without_f +
                                         " lacks the F (fix-binary) flag, so its interpreter cannot be found inside "
                                         "the build's root; " + how);
  return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation: no binfmt_misc handler for " + id->qemu +
                                       " executables is registered on this host; " + how);
}

// BuildKit's predefined platform ARGs: TARGET* for the platform being built, BUILD* the host's.
std::map<std::string, std::string> platform_args(const oci::Platform& target) {
  std::map<std::string, std::string> m;
  for (const char* pre : {"TARGET", "BUILD"}) {
    std::string k = pre;
    oci::Platform p = k == "TARGET" ? normalize_platform(target) : host_platform();
    m[k + "PLATFORM"] = platform_string(p);
    m[k + "OS"] = p.os;
    m[k + "ARCH"] = p.architecture;
    m[k + "VARIANT"] = p.variant;
  }
  return m;
}

// Usable without an ARG, kept out of the cache key and the history, as in BuildKit.
bool is_proxy_arg(const std::string& k) {
  static const std::set<std::string> names = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                              "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                              "ALL_PROXY",  "all_proxy"};
  return names.count(k) > 0;
}

// BuildKit's isGitURL for ADD sources.
bool is_git_url(const std::string& s) {
  if (s.rfind("git://", 0) == 0 || s.rfind("git@", 0) == 0 || s.rfind("github.com/", 0) == 0) return true;
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) return false;
  std::string path = s.substr(0, s.find('#'));
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".git") == 0;
}

// Go's time.ParseDuration ("1m30s", "500ms", "1.5h"); nanoseconds.
std::optional<int64_t> parse_go_duration(const std::string& s) {
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    ++i;
  }
  double total = 0;
  if (i >= s.size()) return std::nullopt;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double v = std::strtod(s.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < s.size() && !std::isdigit(static_cast<unsigned char>(s[k])) && s[k] != '.') ++k;
    std::string unit = s.substr(j, k - j);
    double mult = unit == "ns" ? 1 : unit == "us" || unit == "\u00b5s" || unit == "\u03bcs" ? 1e3
                : unit == "ms" ? 1e6 : unit == "s" ? 1e9 : unit == "m" ? 60e9 : unit == "h" ? 3600e9 : 0;
    if (mult == 0) return std::nullopt;
    total += v * mult;
    i = k;
  }
  return static_cast<int64_t>(neg ? -total : total);
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

/// One platform's image, written to the store by Builder::make_image.
struct BuiltImage {
  std::string manifest_digest;
  int64_t manifest_size = 0;
  std::string config_digest;
  oci::Platform platform;  // its entry in an image index
  std::vector<oci::Descriptor> layers;
  std::vector<std::string> diff_ids;
};

class Builder {
 public:
  Builder(const Options& opts, store::Store& st, Reporter& rep, IdMapping ids, oci::Platform target,
          bool multi_platform)
      : opts_(opts), store_(st), reporter_(rep), ids_(std::move(ids)), target_platform_(std::move(target)),
        multi_platform_(multi_platform) {
    if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
      char* end = nullptr;
      long long v = std::strtoll(sde, &end, 10);
      if (end && *end == 0 && v >= 0) source_date_epoch_ = v;
    }
    for (const auto& o : opts_.outputs) {
      if (auto c = o.attrs.find("compression"); c != o.attrs.end()) {
        if (c->second == "zstd") compression_ = layers::Compression::kZstd;
        else if (c->second == "uncompressed") compression_ = layers::Compression::kNone;
        else compression_ = layers::Compression::kGzip;
      }
      if (auto l = o.attrs.find("compression-level"); l != o.attrs.end()) compression_level_ = std::atoi(l->second.c_str());
    }
  }

  Status plan(const dockerfile::Dockerfile& df, int context_fd);
  void set_hash_cache(std::shared_ptr<HashCache> c) { context_filter_.hashes = std::move(c); }
  // The context's bytes read for hashing (what a daemon's "transferring context" would be).
  // Only for hashing in this process: CopyOp filters go into the sandbox's child.
  SourceFilter reporting_hashes(SourceFilter f) const {
    Reporter* rep = &reporter_;
    f.progress = [rep](uint64_t done, uint64_t total) { rep->transfer("hashing context", done, total); };
    return f;
  }
  void set_job_slots(std::shared_ptr<dag::JobSlots> s) { slots_ = std::move(s); }
  void set_ignore(std::shared_ptr<dockerfile::Matcher> m) {
    if (!m) return;
    context_filter_.excluded = [m](const std::string& rel, bool is_dir) { return m->excluded(rel, is_dir); };
    context_filter_.descend = [m](const std::string& rel) { return m->may_contain_included(rel); };
  }
  Status load_imports() { return load_cache_imports(); }
  /// Progress ids: a later platform's Builder numbers its steps after an earlier one's.
  void set_id_base(int base) { id_base_ = base; }
  int last_id() const { return id_base_ + static_cast<int>(steps_.size()); }
  /// The planned steps for --print=plan, appended to `out`.
  void describe_plan(json& out) const {
    for (const auto& s : steps_) {
      static const char* kinds[] = {"run", "copy", "base", "workdir", "linked"};
      json deps = json::array();
      for (const Step* d : s.deps) deps.push_back(d->display_id);
      out.push_back({{"id", s.display_id}, {"name", s.name}, {"stage", s.stage},
                     {"kind", kinds[static_cast<int>(s.kind)]}, {"key", s.key}, {"deps", deps},
                     {"target", &s == states_[target_].top}});
    }
  }
  Status execute();
  Result<BuiltImage> make_image();
  Result<BuildResult> export_outputs(const std::vector<Builder*>& builds, const std::vector<BuiltImage>& images);

 private:
  Status plan_stage(size_t index);
  Status plan_base_image(StageState& st, const dockerfile::Stage& stage, const std::string& ref);
  Result<StoredImage> load_base(const std::string& ref, const dockerfile::Instruction& ins,
                                const oci::Platform& platform);
  Step* add_image_layers(const StoredImage& img, Step* top, const std::string& display,
                         const std::string& name);
  Status run_onbuild_triggers(StageState& st, const dockerfile::Stage& stage,
                              const std::vector<std::string>& triggers);
  Result<InlineFile> download(const std::string& url, const std::string& checksum,
                              const dockerfile::Instruction& ins);
  Result<LayerResult> unpack_base(Step& s);
  registry::Client& client() {
    if (!client_) {
      registry::Options ro;
      ro.insecure_hosts = opts_.insecure_registries;
      ro.mirrors = opts_.registry_mirrors;
      Reporter* rep = &reporter_;
      ro.progress = [rep](const std::string& what, uint64_t cur, uint64_t total) { rep->transfer(what, cur, total); };
      client_ = std::make_unique<registry::Client>(ro);
    }
    return *client_;
  }
  Result<size_t> stage_by_ref(const std::string& ref, const dockerfile::Instruction& at) const;
  Status plan_instruction(StageState& st, const dockerfile::Stage& stage, size_t pos,
                          const dockerfile::Instruction& ins);
  Result<Step::RunMount> parse_mount(const std::string& spec, StageState& st,
                                     const dockerfile::Instruction& ins);
  Status add_run_mounts(const Step& s, sandbox::Spec& spec, std::vector<std::string>& env,
                        std::vector<fs::FileLock>& locks);
  std::map<std::string, std::string> vars_for(const StageState& st) const;
  SourceFilter hash_filter(const CopyOp& op) const;
  Result<std::string> word(const std::string& raw, const StageState& st,
                           const dockerfile::Instruction& ins) const;
  Step* add_step(Step s);
  Status run_step(Step& s);
  void start_pack(Step& s);
  Status pack_step(Step& s);
  json cache_entry(const Step& s) const;
  std::string compression_name() const;
  Result<LayerResult> execute_step(Step& s);
  Status write_metadata(const BuildResult& r, const std::vector<Builder*>& builds,
                        const std::vector<BuiltImage>& images);
  Status export_filesystem(const std::string& dest_dir);
  Status load_cache_imports();
  /// The records --cache-to exports from this Builder: the target image's layers (min) or
  /// every step that ran or was cached (max).
  Result<CacheRecords> cache_records(const std::string& mode) const;
  Result<bool> try_imported_cache(Step& s);
  /// --no-cache, or --no-cache-filter naming the step's stage.
  bool ignores_cache(const Step& s) const;
  void print_summary();
  bool export_unchanged(const std::string& dest, const std::string& type, const std::string& manifest);
  void record_export(const std::string& dest, const std::string& type, const std::string& manifest);
  Error at(const dockerfile::Instruction& ins, const std::string& msg) const {
    return Error::at({df_->filename, ins.line, 0}, msg);
  }

  const Options& opts_;
  store::Store& store_;
  Reporter& reporter_;
  IdMapping ids_;
  oci::Platform target_platform_;  // what this Builder builds (one per --platform entry)
  bool multi_platform_ = false;    // several platforms: step names carry theirs
  int id_base_ = 0;                // progress ids of this Builder's steps start after it
  std::optional<int64_t> source_date_epoch_;
  layers::Compression compression_ = layers::Compression::kGzip;
  int compression_level_ = -1;
  const dockerfile::Dockerfile* df_ = nullptr;
  int context_fd_ = -1;
  std::shared_ptr<dag::JobSlots> slots_;  // shared with the other platforms' Builders
  // --build-context NAME=VALUE: a local directory (COPY --from, RUN --mount from=) or an image
  // (FROM, COPY --from). A named context wins over a stage of the same name, as in BuildKit.
  struct NamedContext {
    std::string dir;  // real path of a local directory
    std::shared_ptr<UniqueFd> fd;
    std::string image;  // docker-image://REF: REF; oci-layout://...: the value itself
  };
  std::map<std::string, NamedContext> named_;
  std::map<std::string, std::string> layout_images_;  // "oci-layout://..." -> digest in the store
  Status open_named_contexts();
  const NamedContext* named(const std::string& ref) const {
    std::string l = ref;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    auto it = named_.find(l);
    return it == named_.end() ? nullptr : &it->second;
  }
  SourceFilter context_filter_;
  std::map<std::string, std::string> meta_args_;
  std::deque<dockerfile::Dockerfile> triggers_;  // parsed ONBUILD triggers, kept for their lifetime
  std::set<std::string> used_args_;
  bool host_network_warned_ = false;  // the network.host entitlement warning was given
  std::vector<StageState> states_;
  std::deque<Step> steps_;
  std::map<std::string, Step*> by_key_;
  size_t target_ = 0;
  /// Imported cache: key -> record and where its blob is, from --cache-from.
  std::map<std::string, ImportedRecord> imported_cache_;
  std::unique_ptr<registry::Client> client_;
  std::vector<std::string> pushed_;
  dag::Graph graph_;
  dag::Report report_;
};

std::map<std::string, std::string> Builder::vars_for(const StageState& st) const {
  std::map<std::string, std::string> vars = st.args;
  for (const auto& e : st.config.env) {
    auto eq = e.find('=');
    if (eq != std::string::npos) vars[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return vars;
}

// The context filter plus COPY --exclude, for the cache key: what --exclude leaves out of a
// literal directory source does not invalidate the step. Elsewhere it keeps more than the copy
// reads (never less), so the key stays sound.
SourceFilter Builder::hash_filter(const CopyOp& op) const {
  if (!op.exclude.excluded) return context_filter_;
  std::vector<std::string> roots;
  for (const auto& src : op.sources)
    if (!has_glob(src)) roots.push_back(fs::clean("/" + src).substr(1));
  SourceFilter ctx = context_filter_, ex = op.exclude, f = context_filter_;
  f.excluded = [ctx, ex, roots](const std::string& rel, bool is_dir) {
    if (ctx.excluded && ctx.excluded(rel, is_dir)) return true;
    for (const auto& root : roots) {
      if (root.empty()) return ex.excluded(rel, is_dir);
      if (rel.compare(0, root.size() + 1, root + "/") == 0 && ex.excluded(rel.substr(root.size() + 1), is_dir))
        return true;
    }
    return false;
  };
  f.descend = [ctx](const std::string& rel) {
    return !(ctx.excluded && ctx.excluded(rel, true)) || (ctx.descend && ctx.descend(rel));
  };
  return f;
}

Result<std::string> Builder::word(const std::string& raw, const StageState& st,
                                  const dockerfile::Instruction& ins) const {
  auto r = dockerfile::process_word(raw, vars_for(st), df_->escape);
  if (!r.ok()) return at(ins, r.error().message());
  return std::move(r).value();
}

Step* Builder::add_step(Step s) {
  if (auto it = by_key_.find(s.key); it != by_key_.end()) return it->second;  // identical vertex
  s.display_id = id_base_ + static_cast<int>(steps_.size()) + 1;
  steps_.push_back(std::move(s));
  Step* p = &steps_.back();
  by_key_[p->key] = p;
  return p;
}

Result<size_t> Builder::stage_by_ref(const std::string& ref, const dockerfile::Instruction& at_ins) const {
  std::string lower = ref;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  for (const auto& s : df_->stages)
    if (!s.name.empty() && s.name == lower) return static_cast<size_t>(s.index);
  if (auto id = parse_id(ref); id && *id < df_->stages.size()) return static_cast<size_t>(*id);
  return at(at_ins, "stage or image \"" + ref + "\" not found (pulling images is not supported yet)");
}

// --build-arg BUILDKIT_SANDBOX_HOSTNAME=NAME sets the RUN steps' hostname, as in BuildKit.
constexpr const char* kHostnameArg = "BUILDKIT_SANDBOX_HOSTNAME";

Status Builder::open_named_contexts() {
  for (const auto& [raw_name, value] : opts_.build_contexts) {
    std::string name = raw_name;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    NamedContext c;
    auto bad = [&](const std::string& why) {
      return Error::invalid("--build-context " + raw_name + "=" + value + ": " + why);
    };
    if (value.rfind("docker-image://", 0) == 0) {
      c.image = value.substr(15);
      if (c.image.empty()) return bad("no image reference after docker-image://");
    } else if (value.rfind("oci-layout://", 0) == 0) {
      // oci-layout://DIR[:TAG][@DIGEST], as buildx.
      std::string rest = value.substr(13), selector;
      if (auto at = rest.find('@'); at != std::string::npos) {
        selector = rest.substr(at);
        rest = rest.substr(0, at);
      } else if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        selector = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
      }
      auto digest = import_oci_layout(store_, rest, selector);
      if (!digest.ok()) return bad(digest.error().message());
      c.image = value;
      layout_images_[value] = *digest;
    } else if (value.find("://") != std::string::npos || value.rfind("git@", 0) == 0) {
      return bad("only a local directory, docker-image:// and oci-layout:// are supported");
    } else {
      auto real = fs::real_path(value);
      if (!real.ok() || !fs::is_dir(*real)) return bad("not a directory");
      c.dir = *real;
      c.fd = std::make_shared<UniqueFd>(::open(c.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!c.fd->valid()) return Error::from_errno("open build context " + c.dir, errno);
    }
    named_[name] = std::move(c);
  }
  return {};
}

Status Builder::plan(const dockerfile::Dockerfile& df, int context_fd) {
  df_ = &df;
  context_fd_ = context_fd;
  if (df.stages.empty()) return Error::at({df.filename, 0, 0}, "no build stage in Dockerfile");
  OCIB_TRY(open_named_contexts());
  if (auto h = opts_.build_args.find(kHostnameArg); h != opts_.build_args.end()) {
    const std::string& n = h->second;
    if (n.empty() || n.size() > 63 || n.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos)
      return Error::invalid(std::string("--build-arg ") + kHostnameArg + "=" + n + ": not a valid hostname");
  }
  // ARGs before the first FROM: defaults, overridden by --build-arg. The platform ARGs are
  // predefined: FROM lines see them, a stage's `ARG TARGETARCH` (no value) takes them.
  meta_args_ = platform_args(target_platform_);
  for (const auto& ins : df.meta_args) {
    for (const auto& [k, v] : ins.raw_kvs) {
      if (auto it = opts_.build_args.find(k); it != opts_.build_args.end()) {
        meta_args_[k] = it->second;
        used_args_.insert(k);
      } else if (v) {
        auto r = dockerfile::process_word(*v, meta_args_, df.escape);
        if (!r.ok()) return at(ins, r.error().message());
        meta_args_[k] = *r;
      } else {
        meta_args_.erase(k);
        meta_args_[k];  // declared without value: empty, inheritable by name
      }
    }
  }
  states_.resize(df.stages.size());
  if (opts_.target.empty()) {
    target_ = df.stages.size() - 1;
  } else {
    std::string t = opts_.target;
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    bool found = false;
    for (const auto& s : df.stages)
      if (s.name == t) {
        target_ = static_cast<size_t>(s.index);
        found = true;
      }
    if (!found) return Error::invalid("target stage \"" + opts_.target + "\" could not be found");
  }
  OCIB_TRY(plan_stage(target_));
  for (const auto& [k, v] : opts_.build_args)
    if (!used_args_.count(k) && !is_proxy_arg(k) && k != kHostnameArg)
      reporter_.note("warning: build-arg " + k + " was not consumed by any ARG instruction");
  return {};
}

Status Builder::plan_stage(size_t index) {
  StageState& st = states_[index];
  if (st.planned) return {};
  const dockerfile::Stage& stage = df_->stages[index];
  if (st.planning) return at(stage.from, "circular dependency between stages");
  st.planning = true;
  st.display = stage.name.empty() ? "stage-" + std::to_string(index) : stage.name;
  if (multi_platform_) st.display = platform_string(target_platform_) + " " + st.display;

  auto base = dockerfile::process_word(stage.base, meta_args_, df_->escape);
  if (!base.ok()) return at(stage.from, base.error().message());
  std::string b = *base;
  st.platform = target_platform_;
  if (!stage.platform.empty()) {
    auto pf = dockerfile::process_word(stage.platform, meta_args_, df_->escape);
    if (!pf.ok()) return at(stage.from, pf.error().message());
    auto p = parse_platform(*pf);
    if (!p.ok()) return at(stage.from, "FROM --platform=" + *pf + ": " + p.error().message());
    st.platform = *p;
  }
  std::string bl = b;
  std::transform(bl.begin(), bl.end(), bl.begin(), ::tolower);
  if (bl == "scratch") {
    // BuildKit's empty image: the default PATH and WorkingDir "/".
    st.config.env = {kDefaultPath};
    st.config.working_dir = "/";
  } else {
    std::optional<size_t> from;
    const NamedContext* nc = named(bl);
    if (nc && !nc->dir.empty())
      return at(stage.from, "FROM " + b + ": a local directory build context cannot be a base (use COPY --from=" + b + ")");
    for (const auto& s : df_->stages)
      if (!nc && static_cast<size_t>(s.index) < index && !s.name.empty() && s.name == bl) from = static_cast<size_t>(s.index);
    if (nc) b = nc->image;
    if (from) {
      OCIB_TRY(plan_stage(*from));
      const StageState& src = states_[*from];
      if (stage.platform.empty()) st.platform = src.platform;  // as BuildKit: a stage base keeps its platform
      st.top = src.top;
      st.config = src.config;
      st.history = src.history;
      st.base_created = src.base_created;
    } else {
      OCIB_TRY(plan_base_image(st, stage, b));
      // As BuildKit: the base image's ONBUILD triggers run right after FROM, once.
      std::vector<std::string> triggers = std::move(st.config.onbuild);
      st.config.onbuild.clear();
      OCIB_TRY(run_onbuild_triggers(st, stage, triggers));
    }
  }
  for (size_t i = 0; i < stage.body.size(); ++i) OCIB_TRY(plan_instruction(st, stage, i, stage.body[i]));
  st.planning = false;
  st.planned = true;
  return {};
}

Result<Step::RunMount> Builder::parse_mount(const std::string& spec, StageState& st,
                                            const dockerfile::Instruction& ins) {
  Step::RunMount m;
  m.type = "bind";
  std::map<std::string, std::string> kv;
  for (const std::string& part : split_commas(spec)) {
    auto eq = part.find('=');
    std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (eq == std::string::npos && (k == "rw" || k == "readwrite" || k == "ro" || k == "readonly" || k == "required"))
      v = "true";
    kv[k] = v;
  }
  for (const auto& [k, v] : kv) {
    if (k == "type") m.type = v;
    else if (k == "target" || k == "dst" || k == "destination") m.target = v;
    else if (k == "source" || k == "src") m.source = v;
    else if (k == "id") m.id = v;
    else if (k == "rw" || k == "readwrite") m.rw = v != "false";
    else if (k == "ro" || k == "readonly") m.rw = v == "false";
    else if (k == "required") m.required = v != "false";
    else if (k == "env") m.env = v;
    else if (k == "sharing") {
      if (v != "shared" && v != "private" && v != "locked") return at(ins, "invalid sharing=" + v + " (shared, private, locked)");
      m.locked = v == "locked" || v == "private";
    } else if (k == "mode") {
      char* end = nullptr;
      unsigned long mode = std::strtoul(v.c_str(), &end, 8);
      if (v.empty() || *end || mode > 07777) return at(ins, "invalid mount mode \"" + v + "\"");
      m.mode = static_cast<uint32_t>(mode);
    } else if (k == "size") {
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      std::string unit = end ? end : "";
      uint64_t mult = unit.empty() || unit == "b" ? 1 : unit == "k" || unit == "kb" ? 1024 :
                      unit == "m" || unit == "mb" ? 1 << 20 : unit == "g" || unit == "gb" ? 1ull << 30 : 0;
      if (!mult) return at(ins, "invalid tmpfs size \"" + v + "\"");
      m.size = n * mult;
    } else if (k == "from" && named(v) && !named(v)->dir.empty()) {
      m.context_dir = named(v)->dir;
      m.context_fd = named(v)->fd->get();
    } else if (k == "from" && named(v)) {
      return at(ins, "RUN --mount from=" + v + ": an image build context cannot be mounted yet (use a stage FROM it)");
    } else if (k == "from") {
      OCIB_ASSIGN_OR_RETURN(size_t from, stage_by_ref(v, ins));
      if (&states_[from] == &st) return at(ins, "RUN --mount from= cannot refer to its own stage");
      OCIB_TRY(plan_stage(from));
      m.from_stage = true;
      m.from_context = false;
      m.from_top = states_[from].top;
    } else if (k == "uid" || k == "gid") {
      char* end = nullptr;
      errno = 0;
      unsigned long id = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || id > 0xfffffffeUL || v[0] == '-')
        return at(ins, "--mount " + k + "=" + v + ": not a numeric id");
      (k == "uid" ? m.uid : m.gid) = static_cast<uint32_t>(id);
    } else {
      return at(ins, "unknown --mount option \"" + k + "\"");
    }
  }
  if (m.type == "ssh") return at(ins, "RUN --mount=type=ssh is not supported yet");
  if (m.type != "bind" && m.type != "cache" && m.type != "tmpfs" && m.type != "secret")
    return at(ins, "unknown mount type \"" + m.type + "\" (bind, cache, tmpfs, secret)");
  if (m.type == "secret") {
    if (m.id.empty()) m.id = m.target.empty() ? "" : fs::basename(m.target);
    if (m.id.empty()) return at(ins, "RUN --mount=type=secret needs id= or target=");
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
    return m;
  }
  if (m.target.empty()) return at(ins, "RUN --mount=type=" + m.type + " needs target=");
  std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  if (m.target.front() != '/') m.target = fs::join(wd, m.target);
  m.target = fs::clean(m.target);
  if (m.type == "cache" && m.id.empty()) m.id = m.target;
  if (m.type == "bind") m.source = fs::clean("/" + m.source).substr(1);
  return m;
}

// A layer that hides what `filter` excludes beneath `root_fd` when stacked over it in an overlay:
// a whiteout per excluded entry (directories whose contents may be re-included by a `!` rule are
// walked instead), in parent directories with the context's modes. nullopt: nothing excluded.
// Never follows a symlink of the context.
Result<std::optional<std::string>> ignore_mask(int root_fd, const SourceFilter& filter, const std::string& dir) {
  std::vector<std::string> hidden;
  std::function<Status(int, const std::string&)> walk = [&](int dfd, const std::string& rel) -> Status {
    int fd = ::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("read context directory " + (rel.empty() ? "." : rel), errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return Error::from_errno("read context directory " + rel, errno);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    std::vector<std::pair<std::string, bool>> entries;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
      entries.emplace_back(name, S_ISDIR(st.st_mode));
    }
    for (const auto& [name, is_dir] : entries) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      bool excluded = filter.excluded(child, is_dir);
      if (excluded && !(is_dir && filter.descend && filter.descend(child))) {
        hidden.push_back(child);
      } else if (is_dir) {
        UniqueFd sub(::openat(::dirfd(d), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.valid()) OCIB_TRY(walk(sub.get(), child));
      }
    }
    return {};
  };
  OCIB_TRY(walk(root_fd, ""));
  if (hidden.empty()) return std::optional<std::string>();
  OCIB_TRY(fs::mkdirs(dir, 0755));
  // The overlay shows the topmost layer's directories: give the mask's the context's modes
  // (once everything is created in them).
  std::map<std::string, mode_t> modes;
  struct stat rst;
  if (::fstat(root_fd, &rst) == 0) modes[""] = rst.st_mode & 07777;
  for (const auto& rel : hidden) {
    size_t pos = 0;
    for (size_t slash; (slash = rel.find('/', pos)) != std::string::npos; pos = slash + 1) {
      std::string prefix = rel.substr(0, slash);
      if (modes.count(prefix)) continue;
      struct stat st;
      if (::fstatat(root_fd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno("stat context " + prefix, errno);
      std::string at = fs::join(dir, prefix);
      if (::mkdir(at.c_str(), 0755) < 0 && errno != EEXIST) return Error::from_errno("mkdir " + at, errno);
      modes[prefix] = st.st_mode & 07777;
    }
    std::string wh = fs::join(dir, rel);
    if (::mknod(wh.c_str(), S_IFCHR, makedev(0, 0)) < 0)
      return Error::from_errno("RUN --mount=type=bind: hide .dockerignore'd " + rel + " (mknod whiteout)", errno);
  }
  for (auto it = modes.rbegin(); it != modes.rend(); ++it)
    ::chmod((it->first.empty() ? dir : fs::join(dir, it->first)).c_str(), it->second);
  return std::optional<std::string>(dir);
}

// Turns the step's mounts into sandbox mounts. Secrets are read now and stay in memory (a tmpfs
// of the step's own); env-style secrets reach only the process.
Status Builder::add_run_mounts(const Step& s, sandbox::Spec& spec, std::vector<std::string>& env,
                               std::vector<fs::FileLock>& locks) {
  int n = 0;
  for (const auto& m : s.mounts) {
    sandbox::Mount sm;
    sm.target = m.target;
    if (m.type == "cache") {
      std::string dir = fs::join(store_.root(), "cache-mounts/" + Sha256::hex(m.id).substr(0, 24));
      const bool created = !fs::is_dir(dir);
      OCIB_TRY(fs::mkdirs(dir, 0755));
      if (m.mode) ::chmod(dir.c_str(), m.mode);
      // BuildKit gives a new cache directory uid:gid (in the container's ids); done by the
      // sandbox, which can chown to them.
      if (created && (m.uid || m.gid)) {
        sm.chown_uid = m.uid.value_or(0);
        sm.chown_gid = m.gid.value_or(0);
      }
      if (m.locked) {
        OCIB_ASSIGN_OR_RETURN(fs::FileLock l, fs::FileLock::acquire(dir + ".lock"));
        locks.push_back(std::move(l));
      }
      sm.type = sandbox::Mount::Type::kBind;
      sm.source = dir;
    } else if (m.type == "tmpfs") {
      sm.type = sandbox::Mount::Type::kTmpfs;
      sm.tmpfs_size = m.size;
      sm.mode = m.mode ? m.mode : 01777;
    } else if (m.type == "bind") {
      // The source is resolved by the sandbox *inside* its root (the stage's merged view, the
      // context): `ln -s / host` in a stage names the stage's own /, never the host's.
      sm.subpath = m.source;
      std::vector<std::string> lowers;
      if (m.from_stage) {
        // Always an overlay with a throwaway upper, read-only unless rw: even a step that may
        // remount it (--security=insecure) cannot write into the stage's snapshots.
        lowers = lowers_of(store_, m.from_top);
        sm.type = sandbox::Mount::Type::kOverlayRw;
      } else {
        const bool main_context = m.context_dir.empty();
        lowers = {main_context ? opts_.context : m.context_dir};
        // .dockerignore'd files (secret.key, .git) are left out of the view, as BuildKit does:
        // an overlay with a layer of whiteouts over them.
        if (main_context && context_filter_.excluded) {
          OCIB_ASSIGN_OR_RETURN(std::optional<std::string> mask,
                                ignore_mask(context_fd_, context_filter_, fs::join(spec.scratch, "ctxmask-" + std::to_string(n++))));
          if (mask) {
            lowers.insert(lowers.begin(), *mask);
            sm.type = sandbox::Mount::Type::kOverlayRw;
          }
        }
      }
      // Writes are discarded with the step; an insecure step could remount a read-only bind of
      // the context rw, so it gets an overlay too.
      if (m.rw || spec.insecure) sm.type = sandbox::Mount::Type::kOverlayRw;
      if (sm.type == sandbox::Mount::Type::kOverlayRw) {
        sm.lowerdirs = lowers;
        sm.readonly = !m.rw;
      } else {
        sm.type = sandbox::Mount::Type::kBind;
        sm.source = lowers.front();
        sm.readonly = true;
      }
    } else if (m.type == "secret" || m.type == "pipe") {
      std::string value;
      if (m.type == "pipe") {
        value = m.source;
      } else {
        auto it = opts_.secrets.find(m.id);
        if (it == opts_.secrets.end()) {
          if (m.required) return Error::invalid("secret " + m.id + " is required but was not given (--secret id=" + m.id + ",src=FILE)");
          continue;
        }
        if (!it->second.env.empty()) {
          const char* v = std::getenv(it->second.env.c_str());
          if (!v) return Error::invalid("secret " + m.id + ": environment variable " + it->second.env + " is not set");
          value = v;
        } else {
          OCIB_ASSIGN_OR_RETURN(value, fs::read_file(it->second.file));
        }
        if (!m.env.empty()) env.push_back(m.env + "=" + value);
        if (m.target.empty()) continue;
      }
      mode_t mode = m.type == "pipe" ? 0555 : (m.mode ? m.mode : 0400);
      // Readable by a non-root step user only through its mode; owner is container root.
      if (m.type == "secret" && !m.mode && (spec.uid != 0)) mode = 0444;
      // In a tmpfs of the step's own mount namespace: never on disk, gone with the step.
      sm.type = sandbox::Mount::Type::kData;
      sm.data = std::move(value);
      sm.mode = mode;
      sm.chown_uid = m.uid.value_or(0);
      sm.chown_gid = m.gid.value_or(0);
      sm.readonly = true;
    }
    spec.mounts.push_back(sm);
  }
  return {};
}

// A base image from the store: one vertex per layer, each unpacking its blob into a snapshot
// named by the layer's chain id (so every image sharing those layers shares the snapshot).
Result<StoredImage> Builder::load_base(const std::string& ref, const dockerfile::Instruction& ins,
                                       const oci::Platform& platform) {
  if (auto it = layout_images_.find(ref); it != layout_images_.end()) {
    auto img = load_image(store_, it->second, &platform);
    if (!img.ok()) return at(ins, "build context " + ref + ": " + img.error().message());
    return std::move(img).value();
  }
  PullPolicy policy = opts_.pull == "always" ? PullPolicy::kAlways
                      : opts_.pull == "missing" ? PullPolicy::kMissing
                      : opts_.pull == "never"   ? PullPolicy::kNever
                                                : PullPolicy::kDefault;
  auto digest = resolve_base(store_, client(), ref, policy, platform,
                             [this](const std::string& m) { reporter_.note(m); });
  if (!digest.ok()) {
    return at(ins, "base image \"" + ref + "\": " + digest.error().message() +
                       (digest.error().code() == Errc::kNotFound
                            ? " (import it with 'ocib import', or pull it from a registry)"
                            : ""));
  }
  auto img = load_image(store_, *digest, &platform);
  if (!img.ok()) return at(ins, "base image \"" + ref + "\": " + img.error().message());
  return std::move(img).value();
}

// One vertex per layer, each unpacking its blob into a snapshot named by the layer's chain id
// (so every image sharing those layers shares the snapshot). Returns the top one.
Step* Builder::add_image_layers(const StoredImage& img, Step* top, const std::string& display,
                                const std::string& name) {
  std::string chain;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    const std::string& diff_id = img.config.diff_ids[i];
    chain = i == 0 ? diff_id : "sha256:" + Sha256::hex(chain + " " + diff_id);
    Step s;
    s.kind = Step::Kind::kBase;
    s.name = name + " (layer " + std::to_string(i + 1) + "/" + std::to_string(img.layers.size()) + ")";
    s.stage = display;
    s.parent = top;
    s.key = Sha256::hex(std::string("ocib-base-v1 ") + chain);
    s.result.snapshot = s.key.substr(0, 20);
    s.result.digest = img.layers[i].digest;
    s.result.diff_id = diff_id;
    s.result.size = img.layers[i].size;
    s.result.media_type = oci_layer_media_type(img.layers[i].media_type);
    if (s.parent) s.deps.push_back(s.parent);
    top = add_step(std::move(s));
  }
  return top;
}

// A base image from the store.
Status Builder::plan_base_image(StageState& st, const dockerfile::Stage& stage, const std::string& ref) {
  OCIB_ASSIGN_OR_RETURN(StoredImage loaded, load_base(ref, stage.from, st.platform));
  const StoredImage* img = &loaded;
  st.top = add_image_layers(loaded, st.top, st.display,
                            "[" + st.display + " 1/" + std::to_string(stage.body.size() + 1) + "] FROM " + ref);
  st.config = img->config.config;
  if (std::none_of(st.config.env.begin(), st.config.env.end(),
                   [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }))
    st.config.env.insert(st.config.env.begin(), kDefaultPath);
  // Inherited history keeps its own times; its non-empty entries map onto the layers in order.
  std::vector<Step*> chain_steps;
  for (Step* p = st.top; p; p = p->parent) chain_steps.insert(chain_steps.begin(), p);
  size_t li = 0;
  for (const auto& h : img->config.history) {
    HistoryItem item{h.created_by, nullptr, h.created, h.empty_layer};
    if (!h.empty_layer && li < chain_steps.size()) item.step = chain_steps[li++];
    st.history.push_back(item);
  }
  st.base_created = img->config.created;
  return {};
}

Status Builder::run_onbuild_triggers(StageState& st, const dockerfile::Stage& stage,
                                     const std::vector<std::string>& triggers) {
  for (const auto& t : triggers) {
    auto parsed = dockerfile::parse("FROM scratch\n" + t + "\n", df_->filename);
    if (!parsed.ok() || parsed->stages.empty() || parsed->stages[0].body.size() != 1)
      return at(stage.from, "invalid ONBUILD trigger \"" + t + "\" in the base image" +
                                (parsed.ok() ? "" : ": " + parsed.error().message()));
    triggers_.push_back(std::move(parsed).value());
    dockerfile::Instruction& ins = triggers_.back().stages[0].body[0];
    ins.line = stage.from.line;  // errors point at the FROM that pulled the trigger in
    OCIB_TRY(plan_instruction(st, stage, std::string::npos, ins));
  }
  return {};
}

// Downloads an ADD source at plan time: its content (or --checksum) is part of the cache key.
Result<InlineFile> Builder::download(const std::string& url, const std::string& checksum,
                                     const dockerfile::Instruction& ins) {
  std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
  if (!c) return at(ins, "ADD " + url + ": cannot initialise libcurl");
  std::string body;
  auto sink = +[](char* p, size_t size, size_t n, void* out) -> size_t {
    static_cast<std::string*>(out)->append(p, size * n);
    return size * n;
  };
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c.get(), CURLOPT_FILETIME, 1L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  reporter_.note("downloading " + url);
  CURLcode rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK) return at(ins, "ADD " + url + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400) return at(ins, "ADD " + url + ": HTTP status " + std::to_string(status));
  std::string got = "sha256:" + Sha256::hex(body);
  if (!checksum.empty() && checksum != got)
    return at(ins, "ADD " + url + ": digest mismatch: expected " + checksum + ", got " + got);
  InlineFile f;
  std::string path = url.substr(0, url.find_first_of("?#"));
  auto scheme = path.find("://");
  path = path.substr(scheme + 3);
  auto slash = path.find('/');
  f.name = slash == std::string::npos ? "" : fs::basename(path.substr(slash));
  if (f.name.empty() || f.name == "/" || f.name == ".") f.name = "index.html";
  f.content = std::move(body);
  f.mode = 0600;  // BuildKit's HTTP source
  curl_off_t ft = -1;
  if (curl_easy_getinfo(c.get(), CURLINFO_FILETIME_T, &ft) == CURLE_OK && ft >= 0) f.mtime = ft;
  return f;
}

Status Builder::plan_instruction(StageState& st, const dockerfile::Stage& stage, size_t pos,
                                 const dockerfile::Instruction& ins) {
  const std::string& kw = ins.keyword;
  // pos == npos: an ONBUILD trigger of the base image, run as part of FROM.
  bool trigger = pos == std::string::npos;
  std::string label = "[" + st.display + " " + std::to_string(trigger ? 1 : pos + 2) + "/" +
                      std::to_string(stage.body.size() + 1) + "] " + (trigger ? "ONBUILD " : "") + ins.original;
  auto check_flags = [&](std::initializer_list<const char*> allowed) -> Status {
    for (const auto& f : ins.flags) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || f.name == a;
      if (!ok) return at(ins, "flag --" + f.name + " is not supported for " + kw + " yet");
    }
    return {};
  };

  if (kw == "RUN") {
    OCIB_TRY(check_flags({"network", "mount", "security"}));
    bool insecure = false;
    if (const auto* f = ins.flag("security")) {
      if (f->value == "insecure") {
        if (!std::count(opts_.allow.begin(), opts_.allow.end(), "security.insecure"))
          return at(ins, "RUN --security=insecure needs the entitlement: ocib build --allow security.insecure");
        insecure = true;
      } else if (f->value != "sandbox") {
        return at(ins, "RUN --security=" + f->value + ": unknown mode (sandbox or insecure)");
      }
    }
    Step s;
    s.kind = Step::Kind::kRun;
    s.insecure = insecure;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    s.network = opts_.network;
    if (const auto* f = ins.flag("network")) {
      if (f->value == "none") s.network = sandbox::Network::kNone;
      else if (f->value == "host") s.network = sandbox::Network::kHost;
      else if (f->value != "default") return at(ins, "unsupported network mode \"" + f->value + "\"");
      // "default": the build's mode (--network), as in BuildKit.
    }
    if (s.network == sandbox::Network::kHost && !host_network_warned_ &&
        !std::count(opts_.allow.begin(), opts_.allow.end(), "network.host")) {
      // BuildKit refuses host network without the entitlement; we still allow it, for now.
      host_network_warned_ = true;
      reporter_.note("warning: host network for RUN without the entitlement: add --allow network.host "
                     "(it will be required in a later version)");
    }
    std::vector<std::string> shell =
        st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
    json mount_key = json::array();
    for (const auto& f : ins.flags) {
      if (f.name != "mount") continue;
      OCIB_ASSIGN_OR_RETURN(std::string spec, word(f.value, st, ins));
      OCIB_ASSIGN_OR_RETURN(Step::RunMount m, parse_mount(spec, st, ins));
      json mk = {{"type", m.type}, {"target", m.target}, {"id", m.id}, {"source", m.source}, {"rw", m.rw},
                 {"env", m.env}, {"size", m.size}, {"mode", m.mode}};
      if (m.type == "bind") {
        if (m.from_stage) {
          mk["from"] = m.from_top ? m.from_top->key : "empty";
          if (m.from_top) s.deps.push_back(m.from_top);
        } else {
          // Bind mounts of the context: their content is an input of the step.
          auto h = m.context_fd >= 0 ? hash_sources(m.context_fd, {m.source.empty() ? "." : m.source}, SourceFilter{})
                                     : hash_sources(context_fd_, {m.source.empty() ? "." : m.source}, reporting_hashes(context_filter_));
          if (!h.ok()) return at(ins, "RUN --mount=type=bind: " + h.error().message() + " in build context");
          mk["context"] = *h;
        }
      }
      mount_key.push_back(mk);
      s.mounts.push_back(std::move(m));
    }
    if (ins.json) {
      s.argv = *ins.json;
    } else if (!ins.heredocs.empty() && dockerfile::parse_heredoc_word(ins.rest)) {
      // The whole command is one heredoc: its body is the script.
      std::string script = ins.heredocs.front().data();
      if (script.rfind("#!", 0) == 0) {
        // As BuildKit: the script becomes an executable file under /dev/pipes and runs directly.
        Step::RunMount pipe;
        pipe.type = "pipe";
        pipe.target = "/dev/pipes/" + ins.heredocs.front().name;
        pipe.source = script;
        s.mounts.push_back(pipe);
        s.argv = {pipe.target};
      } else {
        s.argv = shell;
        s.argv.push_back(script);
      }
    } else {
      // Heredocs after command text reach the shell as written; it does the redirection.
      std::string cmd = ins.rest;
      for (const auto& h : ins.heredocs) cmd += "\n" + h.content + h.name;
      s.argv = shell;
      s.argv.push_back(cmd);
    }
    if (s.argv.empty()) return at(ins, "RUN needs a command");
    // Build args in scope reach the command's environment (not the image config); ENV wins.
    std::map<std::string, std::string> env_map;
    std::vector<std::string> env = st.config.env;
    for (const auto& e : env) env_map[e.substr(0, e.find('='))] = e;
    for (const auto& [k, v] : st.args)
      if (!env_map.count(k)) env.push_back(k + "=" + v);
    s.env = env;
    for (const auto& [k, v] : opts_.build_args)
      if (is_proxy_arg(k) && !st.args.count(k) && !env_map.count(k)) {
        s.proxy_env.push_back(k + "=" + v);
        used_args_.insert(k);
      }
    s.user = st.config.user;
    s.cwd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    json k = {{"v", kKeyVersion}, {"op", "run"}, {"parent", s.parent ? s.parent->key : ""},
              {"argv", s.argv}, {"env", s.env}, {"user", s.user}, {"cwd", s.cwd},
              // The network mode is an input, as in BuildKit's ExecOp: the (new) default mode
              // keys apart from none, whose results keep their keys. A default step run on the
              // host's network (no slirp4netns here) keys as default: same request, same key.
              {"net", s.network == sandbox::Network::kHost      ? "host"
                      : s.network == sandbox::Network::kDefault ? "default"
                                                                 : "none"}};
    if (auto h = opts_.build_args.find(kHostnameArg); h != opts_.build_args.end()) k["hostname"] = h->second;
    if (insecure) k["security"] = "insecure";
    // The same command on the same (e.g. scratch) parent differs per architecture; host
    // builds keep their keys.
    if (!runs_natively(st.platform)) {
      s.emulated = normalize_platform(st.platform);
      k["platform"] = platform_string(*s.emulated);
    } else if (!same_platform(st.platform, host_platform())) {
      k["platform"] = platform_string(normalize_platform(st.platform));
    }
    if (!mount_key.empty()) k["mounts"] = mount_key;  // secrets by id only, never by value
    for (const auto& m : s.mounts)
      if (m.type == "pipe") k["pipe"] = Sha256::hex(m.source);
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    Step* p = add_step(std::move(s));
    st.top = p;
    std::string shown = ins.json ? json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : shell_join(p->argv);
    st.history.push_back({"RUN " + shown, p, "", false});
    return {};
  }
  if (kw == "COPY" || kw == "ADD") {
    if (kw == "COPY") OCIB_TRY(check_flags({"from", "chown", "chmod", "exclude", "parents", "link"}));
    else OCIB_TRY(check_flags({"chown", "chmod", "exclude", "link", "checksum", "keep-git-dir"}));
    auto bool_flag = [&](const char* name) {
      const auto* f = ins.flag(name);
      return f && f->value != "false";
    };
    std::vector<std::string> words;
    if (ins.json) {
      for (const auto& w : *ins.json) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        words.push_back(e);
      }
    } else {
      for (const auto& w : ins.raw_words) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        words.push_back(e);
      }
    }
    // Heredoc sources (`COPY <<EOF /dest`) become inline files, in order.
    std::vector<InlineFile> inline_files;
    if (!ins.heredocs.empty() && !ins.json) {
      std::vector<std::string> kept;
      size_t next = 0;
      for (size_t i = 0; i < ins.raw_words.size(); ++i) {
        if (i + 1 < ins.raw_words.size() && dockerfile::parse_heredoc_word(ins.raw_words[i]) &&
            next < ins.heredocs.size()) {
          const auto& h = ins.heredocs[next++];
          std::string content = h.data();
          if (h.expand) {
            auto e = dockerfile::expand(content, vars_for(st), df_->escape);
            if (!e.ok()) return at(ins, e.error().message());
            content = *e;
          }
          inline_files.push_back({h.name, content, std::nullopt, -1});
        } else {
          kept.push_back(words[i]);
        }
      }
      words = kept;
      words.insert(words.begin(), "");  // placeholder so the dest logic below still sees >= 2 words
    }
    if (words.size() < 2) return at(ins, kw + " requires at least two arguments");
    Step s;
    s.kind = Step::Kind::kCopy;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    std::string dest = words.back();
    words.pop_back();
    if (!inline_files.empty()) words.erase(words.begin());  // the placeholder
    s.copy.inline_files = inline_files;
    if (kw == "ADD") {
      std::string checksum;
      if (const auto* f = ins.flag("checksum")) {
        OCIB_ASSIGN_OR_RETURN(checksum, word(f->value, st, ins));
        if (checksum.rfind("sha256:", 0) != 0 || checksum.size() != 71 ||
            checksum.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
          return at(ins, "invalid --checksum \"" + checksum + "\" (sha256:<64 hex digits>)");
      }
      if (ins.flag("keep-git-dir")) return at(ins, "ADD --keep-git-dir: ADD of git repositories is not supported yet");
      std::vector<std::string> local;
      size_t urls = 0;
      for (const auto& w : words) {
        if (is_git_url(w)) return at(ins, "ADD of git repositories is not supported yet");
        if (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0) {
          OCIB_ASSIGN_OR_RETURN(InlineFile f, download(w, checksum, ins));
          s.copy.inline_files.push_back(std::move(f));
          ++urls;
          continue;
        }
        if (w.find("://") != std::string::npos) return at(ins, "ADD " + w + ": unsupported URL scheme (http, https)");
        local.push_back(w);
      }
      if (!checksum.empty() && urls == 0) return at(ins, "ADD --checksum can only be used with an HTTP(S) source");
      words = std::move(local);
      s.copy.extract_archives = true;
    }
    std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    bool dir_syntax = !dest.empty() && dest.back() == '/';
    std::string abs = dest.front() == '/' ? dest : fs::join(wd, dest);
    s.copy.dest = fs::clean(abs) + (dir_syntax && fs::clean(abs) != "/" ? "/" : "");
    if (dest == "." || dest == "./") s.copy.dest = fs::clean(wd) == "/" ? "/" : fs::clean(wd) + "/";
    s.copy.sources = words;
    std::string excludes;
    for (const auto& f : ins.flags) {
      if (f.name != "exclude") continue;
      OCIB_ASSIGN_OR_RETURN(std::string e, word(f.value, st, ins));
      excludes += e + "\n";
    }
    if (!excludes.empty()) {
      auto m = dockerfile::parse_dockerignore(excludes);
      if (!m.ok()) return at(ins, "invalid --exclude: " + m.error().message());
      auto mp = std::make_shared<dockerfile::Matcher>(std::move(m).value());
      s.copy.exclude.excluded = [mp](const std::string& rel, bool is_dir) { return mp->excluded(rel, is_dir); };
      s.copy.exclude.descend = [mp](const std::string& rel) { return mp->may_contain_included(rel); };
    }
    s.copy.parents = bool_flag("parents");
    bool link = bool_flag("link");
    if (const auto* f = ins.flag("chmod")) {
      char* end = nullptr;
      unsigned long m = std::strtoul(f->value.c_str(), &end, 8);
      if (f->value.empty() || *end != 0 || m > 07777) return at(ins, "invalid --chmod value \"" + f->value + "\"");
      s.copy.chmod = static_cast<uint32_t>(m);
    }
    if (const auto* f = ins.flag("chown")) {
      OCIB_ASSIGN_OR_RETURN(s.chown_spec, word(f->value, st, ins));
    }
    std::string src_key;
    if (const auto* f = ins.flag("from")) {
      OCIB_ASSIGN_OR_RETURN(std::string ref, word(f->value, st, ins));
      s.from_context = false;
      const NamedContext* nc = named(ref);
      if (nc && !nc->dir.empty()) {
        // A named local directory: copied like the main context (its own files, no .dockerignore).
        s.from_context = true;
        s.context_dir = nc->dir;
        auto expected = std::make_shared<SourceManifest>();  // checked by copy_into
        auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                        : hash_sources(nc->fd->get(), s.copy.sources, SourceFilter{}, expected.get());
        s.copy.expected = std::move(expected);
        if (!h.ok()) {
          return at(ins, kw + " failed: " + h.error().message() + " in build context \"" + ref + "\"" +
                             (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
        }
        src_key = "named-context:" + *h;
      } else if (nc) {
        OCIB_ASSIGN_OR_RETURN(StoredImage img, load_base(nc->image, ins, st.platform));
        s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
        src_key = "image:" + img.manifest_digest;
      } else if (auto from = stage_by_ref(ref, ins); from.ok()) {
        if (&states_[*from] == &st) return at(ins, "COPY --from cannot refer to its own stage");
        OCIB_TRY(plan_stage(*from));
        s.from_top = states_[*from].top;
        src_key = "stage:" + (s.from_top ? s.from_top->key : std::string("empty"));
      } else {
        // Not a stage: an image, resolved like a FROM base; its layers are the source view.
        OCIB_ASSIGN_OR_RETURN(StoredImage img, load_base(ref, ins, st.platform));
        s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
        src_key = "image:" + img.manifest_digest;
      }
      if (s.from_top) s.deps.push_back(s.from_top);
    } else {
      s.copy.filter = context_filter_;
      auto expected = std::make_shared<SourceManifest>();  // checked by copy_into
      auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                      : hash_sources(context_fd_, s.copy.sources, reporting_hashes(hash_filter(s.copy)),
                                                     expected.get());
      s.copy.expected = std::move(expected);
      if (!h.ok()) {
        return at(ins, kw + " failed: " + h.error().message() + " in build context" +
                           (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
      }
      src_key = "context:" + *h;
    }
    for (const auto& f : s.copy.inline_files)
      src_key += " inline:" + f.name + ":" + Sha256::hex(f.content) +
                 (f.mode ? ":" + std::to_string(*f.mode) : "") + (f.mtime >= 0 ? "@" + std::to_string(f.mtime) : "");
    // --link: the layer is made on an empty root and keyed without the parent, unless --chown
    // names a user the parent's /etc/passwd must resolve.
    bool named_owner = s.chown_spec.find_first_not_of("0123456789:") != std::string::npos;
    if (link && named_owner) s.user_from = s.parent;
    if (link) s.parent = nullptr;
    json k = {{"v", kKeyVersion}, {"op", "copy"}, {"parent", s.parent ? s.parent->key : ""},
              {"src", src_key}, {"sources", s.copy.sources}, {"dest", s.copy.dest},
              {"chown", s.chown_spec}, {"chmod", s.copy.chmod ? static_cast<int>(*s.copy.chmod) : -1}};
    if (kw == "ADD") k["add"] = true;
    if (!excludes.empty()) k["exclude"] = excludes;
    if (s.copy.parents) k["parents"] = true;
    if (link) k["link"] = s.user_from ? s.user_from->key : "";
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    if (s.user_from) s.deps.push_back(s.user_from);
    Step* p = add_step(std::move(s));
    if (link) {
      Step l;
      l.kind = Step::Kind::kLinked;
      l.name = label + " (link)";
      l.stage = st.display;
      l.parent = st.top;
      l.link_src = p;
      l.key = Sha256::hex(std::string(kKeyVersion) + " linked " + (st.top ? st.top->key : "") + " " + p->key);
      if (l.parent) l.deps.push_back(l.parent);
      l.deps.push_back(p);
      l.copy.sources = p->copy.sources;
      p = add_step(std::move(l));
    }
    st.top = p;
    std::string created_by = kw + " ";
    for (const auto& f : ins.flags) created_by += "--" + f.name + (f.value.empty() ? "" : "=" + f.value) + " ";
    created_by += shell_join(p->copy.sources) + " " + dest;
    st.history.push_back({created_by, p, "", false});
    return {};
  }

  // Instructions that change only the image config (and WORKDIR's mkdir).
  if (kw == "HEALTHCHECK") OCIB_TRY(check_flags({"interval", "timeout", "start-period", "start-interval", "retries"}));
  else OCIB_TRY(check_flags({}));
  auto hist = [&](const std::string& text) { st.history.push_back({text, nullptr, "", true}); };
  auto set_env = [&](std::vector<std::string>& list, const std::string& k, const std::string& v) {
    for (auto& e : list)
      if (e.compare(0, k.size() + 1, k + "=") == 0) {
        e = k + "=" + v;
        return;
      }
    list.push_back(k + "=" + v);
  };
  // ENV, ARG and LABEL expand every pair with the environment from before the instruction, as
  // BuildKit: `ENV A=1 B=${A:-x}` gives B=x unless A was already set.
  if (kw == "ENV") {
    std::string text = "ENV";
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
      vals.emplace_back(k, std::move(val));
    }
    for (const auto& [k, val] : vals) {
      set_env(st.config.env, k, val);
      text += " " + k + "=" + val;
    }
    hist(text);
  } else if (kw == "ARG") {
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      std::string val;
      if (auto it = opts_.build_args.find(k); it != opts_.build_args.end()) {
        val = it->second;
        used_args_.insert(k);
      } else if (v) {
        OCIB_ASSIGN_OR_RETURN(val, word(*v, st, ins));
      } else if (auto m = meta_args_.find(k); m != meta_args_.end()) {
        val = m->second;
      } else {
        continue;  // declared without value and none given: unset
      }
      vals.emplace_back(k, std::move(val));
    }
    for (auto& [k, val] : vals) st.args[k] = std::move(val);
  } else if (kw == "LABEL" || kw == "MAINTAINER") {
    if (kw == "MAINTAINER") {
      st.config.labels["maintainer"] = ins.rest;
      hist("MAINTAINER " + ins.rest);
    } else {
      std::string text = "LABEL";
      for (const auto& [k, v] : ins.raw_kvs) {
        OCIB_ASSIGN_OR_RETURN(std::string key, word(k, st, ins));
        OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
        st.config.labels[key] = val;  // labels are not in the environment: order does not matter
        text += " " + key + "=" + val;
      }
      hist(text);
    }
  } else if (kw == "WORKDIR") {
    if (ins.raw_words.empty()) return at(ins, "WORKDIR requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(std::string dir, word(ins.raw_words.front(), st, ins));
    std::string cur = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    st.config.working_dir = fs::clean(dir.front() == '/' ? dir : fs::join(cur, dir));
    if (st.config.working_dir == "/") {
      hist("WORKDIR /");
      return {};
    }
    // As BuildKit: the directory is created (owned by the current USER) in a layer.
    Step s;
    s.kind = Step::Kind::kWorkdir;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    s.workdir = st.config.working_dir;
    s.user = st.config.user;
    json k = {{"v", kKeyVersion}, {"op", "workdir"}, {"parent", s.parent ? s.parent->key : ""},
              {"path", s.workdir}, {"user", s.user}};
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    Step* p = add_step(std::move(s));
    st.top = p;
    st.history.push_back({"WORKDIR " + st.config.working_dir, p, "", false});
  } else if (kw == "USER") {
    if (ins.raw_words.empty()) return at(ins, "USER requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(st.config.user, word(ins.raw_words.front(), st, ins));
    hist("USER " + st.config.user);
  } else if (kw == "EXPOSE") {
    for (const auto& w : ins.raw_words) {
      OCIB_ASSIGN_OR_RETURN(std::string p, word(w, st, ins));
      // "80", "80/udp", "8000-8002/tcp" (a range expands to each port, as Docker does).
      std::string proto = "tcp";
      if (auto slash = p.find('/'); slash != std::string::npos) {
        proto = p.substr(slash + 1);
        p = p.substr(0, slash);
      }
      std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
      if (proto != "tcp" && proto != "udp" && proto != "sctp") return at(ins, "invalid EXPOSE protocol \"" + proto + "\"");
      auto dash = p.find('-');
      auto lo = parse_id(p.substr(0, dash));
      auto hi = dash == std::string::npos ? lo : parse_id(p.substr(dash + 1));
      if (!lo || !hi || *lo > 65535 || *hi > 65535 || *hi < *lo) return at(ins, "invalid EXPOSE port \"" + p + "\"");
      for (uint32_t port = *lo; port <= *hi; ++port) {
        std::string e = std::to_string(port) + "/" + proto;
        if (std::find(st.config.exposed_ports.begin(), st.config.exposed_ports.end(), e) ==
            st.config.exposed_ports.end())
          st.config.exposed_ports.push_back(e);
      }
    }
    hist("EXPOSE " + ins.rest);
  } else if (kw == "CMD" || kw == "ENTRYPOINT") {
    std::vector<std::string> v;
    if (ins.json) {
      v = *ins.json;
    } else {
      v = st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
      v.push_back(ins.rest);
    }
    if (kw == "CMD") {
      st.config.cmd = v;
    } else {
      st.config.entrypoint = v;
      // Docker: an ENTRYPOINT resets a CMD inherited from the base.
      bool cmd_here = false;
      for (size_t i = 0; !trigger && i < pos; ++i) cmd_here = cmd_here || stage.body[i].keyword == "CMD";
      if (!cmd_here) st.config.cmd.reset();
    }
    hist(kw + " " + (ins.json ? json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  } else if (kw == "SHELL") {
    if (!ins.json || ins.json->empty()) return at(ins, "SHELL requires the arguments to be in JSON form");
    st.config.shell = *ins.json;
    hist("SHELL " + json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "VOLUME") {
    std::vector<std::string> vols = ins.json ? *ins.json : std::vector<std::string>{};
    if (!ins.json)
      for (const auto& w : ins.raw_words) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        vols.push_back(e);
      }
    for (const auto& v : vols)
      if (std::find(st.config.volumes.begin(), st.config.volumes.end(), v) == st.config.volumes.end())
        st.config.volumes.push_back(v);
    hist("VOLUME " + json(vols).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "HEALTHCHECK") {
    json hc = json::object();
    if (!ins.words.empty() && ins.words[0] == "NONE") {
      hc["Test"] = {"NONE"};
    } else {
      std::vector<std::string> test;
      if (ins.json) {
        test = {"CMD"};
        test.insert(test.end(), ins.json->begin(), ins.json->end());
      } else {
        test = {"CMD-SHELL", ins.words.size() > 1 ? ins.words[1] : ins.rest};
      }
      hc["Test"] = test;
      for (auto [flag, key] : {std::pair{"interval", "Interval"}, {"timeout", "Timeout"},
                               {"start-period", "StartPeriod"}, {"start-interval", "StartInterval"}}) {
        const auto* f = ins.flag(flag);
        if (!f) continue;
        auto d = parse_go_duration(f->value);
        if (!d) return at(ins, "HEALTHCHECK --" + std::string(flag) + ": invalid duration \"" + f->value + "\"");
        if (*d != 0 && *d < 1000000)
          return at(ins, "HEALTHCHECK --" + std::string(flag) + " \"" + f->value + "\" cannot be less than 1ms");
        if (*d) hc[key] = *d;
      }
      if (const auto* f = ins.flag("retries")) {
        char* end = nullptr;
        long n = std::strtol(f->value.c_str(), &end, 10);
        if (f->value.empty() || *end) return at(ins, "HEALTHCHECK --retries: invalid number \"" + f->value + "\"");
        if (n < 0) return at(ins, "--retries cannot be negative (" + f->value + ")");
        if (n) hc["Retries"] = n;
      }
    }
    st.config.healthcheck = hc;
    hist("HEALTHCHECK " + hc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "ONBUILD") {
    std::string t = ins.rest;
    for (const auto& h : ins.heredocs) t += "\n" + h.content + h.name;
    st.config.onbuild.push_back(t);
    hist("ONBUILD " + t);
  } else if (kw == "STOPSIGNAL") {
    OCIB_ASSIGN_OR_RETURN(st.config.stop_signal, word(ins.rest, st, ins));
    hist("STOPSIGNAL " + st.config.stop_signal);
  } else {
    return at(ins, kw + " is not supported yet");
  }
  return {};
}

Status Builder::execute() {
  Step* top = states_[target_].top;
  std::vector<dag::VertexId> targets;
  // Among ready steps the scheduler starts the one on the longest remaining path; lengths
  // are the durations recorded by earlier builds, or a guess by kind for a step never run.
  Durations durations = Durations::load(store_.root());
  for (auto& s : steps_) {
    dag::Vertex v;
    v.name = s.name;
    for (Step* d : s.deps) v.deps.push_back(d->vid);
    Step* sp = &s;
    v.run = [this, sp]() { return run_step(*sp); };
    double guess = s.kind == Step::Kind::kRun ? 1.0 : s.kind == Step::Kind::kBase ? 0.5 : 0.1;
    v.cost = durations.estimate(s.key, s.name).value_or(guess) + 0.001;
    s.vid = graph_.add(std::move(v));
  }
  if (top) targets.push_back(top->vid);
  int jobs = opts_.jobs > 0 ? opts_.jobs : std::max(4, static_cast<int>(std::thread::hardware_concurrency()));
  dag::Scheduler sched(jobs, [] { sandbox::cancel_all(); }, slots_);
  Status st = sched.run(graph_, targets, &report_);
  if (!st.ok() && report_.cancelled > 0) st.error().wrap(std::to_string(report_.cancelled) + " cancelled");
  for (const auto& s : steps_) {
    if (s.cached || s.vid >= report_.timings.size() || !report_.timings[s.vid].ran) continue;
    const auto& t = report_.timings[s.vid];
    if (report_.failed != s.vid)  // a failed step's time says nothing about its next run
      durations.record(s.key, s.name, std::chrono::duration<double>(t.completed - t.started).count());
  }
  durations.save();
  return st;
}

Status Builder::run_step(Step& s) {
  if (s.kind == Step::Kind::kLinked) {
    // The --link layer is ready (a dependency); this vertex only stacks it.
    Step* src = s.link_src;
    s.result.snapshot = src->result.snapshot;
    s.result.created = src->result.created;
    s.cached = src->cached;
    if (src->packed.valid()) {
      std::shared_future<Status> f = src->packed;
      s.packed = std::async(std::launch::async, [&s, src, f]() -> Status {
                   OCIB_TRY(f.get());
                   s.result.digest = src->result.digest;
                   s.result.diff_id = src->result.diff_id;
                   s.result.size = src->result.size;
                   s.result.media_type = src->result.media_type;
                   return {};
                 }).share();
    } else {
      s.result = src->result;
    }
    return {};
  }
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lock, store_.lock_key(s.key));
  if (s.kind == Step::Kind::kBase) {
    if (store_.has_snapshot(s.result.snapshot)) {
      s.cached = true;
      reporter_.cached(s.display_id, s.name);
      return {};
    }
    reporter_.started(s.display_id, s.name);
    auto t0 = std::chrono::steady_clock::now();
    auto r = unpack_base(s);
    if (!r.ok()) {
      reporter_.failed(s.display_id, r.error().message());
      return std::move(r).error().wrap(s.name);
    }
    s.ran = true;
    reporter_.done(s.display_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return {};
  }
  bool use_cache = !ignores_cache(s);
  if (use_cache) {
    if (auto hit = store_.cache_get(s.key)) {
      LayerResult r;
      r.snapshot = hit->value("snapshot", "");
      r.created = hit->value("created", int64_t{0});
      // Blobs are kept per compression: a zstd build after a gzip one packs again.
      if (auto b = hit->find("blobs"); b != hit->end() && b->is_object() && b->contains(compression_name())) {
        const json& e = (*b)[compression_name()];
        r.digest = e.value("digest", "");
        r.diff_id = e.value("diff_id", "");
        r.media_type = e.value("media_type", "");
        r.size = e.value("size", int64_t{0});
      }
      if (store_.has_snapshot(r.snapshot)) {
        s.result = r;
        s.cached = true;
        if (r.digest.empty() || !store_.has_blob(r.digest)) start_pack(s);
        reporter_.cached(s.display_id, s.name);
        return {};
      }
    }
  }
  if (use_cache && !imported_cache_.empty()) {
    OCIB_ASSIGN_OR_RETURN(bool hit, try_imported_cache(s));
    if (hit) {
      reporter_.cached(s.display_id, s.name + " (imported cache)");
      return {};
    }
  }
  reporter_.started(s.display_id, s.name);
  auto t0 = std::chrono::steady_clock::now();
  auto r = execute_step(s);
  if (!r.ok()) {
    Error e = std::move(r).error();
    reporter_.failed(s.display_id, e.message());
    return e.wrap(s.name);
  }
  s.result = *r;
  s.ran = true;
  OCIB_TRY(store_.cache_put(s.key, cache_entry(s)));
  start_pack(s);
  reporter_.done(s.display_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return {};
}

json Builder::cache_entry(const Step& s) const {
  const LayerResult& r = s.result;
  json entry = {{"snapshot", r.snapshot}, {"created", r.created}, {"name", s.name}, {"blobs", json::object()}};
  // Keep blobs of other compressions recorded by earlier builds.
  if (auto old = store_.cache_get(s.key); old && old->contains("blobs") && (*old)["blobs"].is_object())
    entry["blobs"] = (*old)["blobs"];
  if (!r.digest.empty())
    entry["blobs"][compression_name()] = {{"digest", r.digest}, {"diff_id", r.diff_id},
                                          {"media_type", r.media_type}, {"size", r.size}};
  return entry;
}

std::string Builder::compression_name() const {
  switch (compression_) {
    case layers::Compression::kZstd: return "zstd";
    case layers::Compression::kNone: return "uncompressed";
    default: return "gzip";
  }
}

void Builder::start_pack(Step& s) {
  s.packed = std::async(std::launch::async, [this, &s] { return pack_step(s); }).share();
}

// Packs a committed snapshot into a layer blob and records it in the cache entry.
Status Builder::pack_step(Step& s) {
  static std::counting_semaphore<64> slots(std::max(1u, std::thread::hardware_concurrency()));
  slots.acquire();
  struct Release {
    ~Release() { slots.release(); }
  } release;
  auto t0 = std::chrono::steady_clock::now();
  layers::PackOptions po;
  po.ids = &ids_;
  po.clamp_mtime = source_date_epoch_;
  po.compression = compression_;
  po.level = compression_level_;
  std::string blob_tmp = store_.tmp_file_path("layer-");
  OCIB_ASSIGN_OR_RETURN(std::string pack_staging, store_.make_tmp_dir("pack-"));
  Staging pack_guard(pack_staging, ids_);
  auto blob = pack_snapshot(store_.snapshot_path(s.result.snapshot), blob_tmp, po, ids_, pack_staging);
  if (!blob.ok()) {
    ::unlink(blob_tmp.c_str());
    return std::move(blob).error().wrap("packing layer of " + s.name);
  }
  if (store_.has_blob(blob->digest)) {
    ::unlink(blob_tmp.c_str());
  } else {
    OCIB_TRY(store_.adopt_blob(blob_tmp, blob->digest));
  }
  s.result.digest = blob->digest;
  s.result.diff_id = blob->diff_id;
  s.result.size = blob->size;
  s.result.media_type = blob->media_type;
  if (log::debug_enabled())
    log::debug(s.name + ": pack " +
               std::to_string(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()) + " ms");
  return store_.cache_put(s.key, cache_entry(s));
}

// Unpacks a base layer inside a user namespace, so the files get their real container owners
// (subordinate ids) even for an unprivileged caller.
Result<LayerResult> Builder::unpack_base(Step& s) {
  OCIB_ASSIGN_OR_RETURN(std::string dest, store_.make_tmp_dir("unpack-"));
  Staging dest_guard(dest, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  // The unpack reports the entries it refused here (its own output is only step output).
  OCIB_ASSIGN_OR_RETURN(std::string report, store_.make_tmp_dir("report-"));
  Staging report_guard(report, ids_);
  std::string blob = store_.blob_path(s.result.digest);
  spec.host_dirs = {fs::dirname(blob), dest, report};
  std::string hex = fs::basename(blob);
  std::string diff_id = s.result.diff_id;
  std::string layer = s.result.digest;
  spec.in_sandbox = reporting([hex, diff_id, layer](const std::vector<int>& fds) -> Status {
    layers::UnpackOptions uo;
    uo.expected_diff_id = diff_id;
    auto r = layers::unpack_layer("/proc/self/fd/" + std::to_string(fds.at(0)) + "/" + hex,
                                  "/proc/self/fd/" + std::to_string(fds.at(1)), uo);
    if (!r.ok()) return std::move(r).error();
    if (std::string w = layers::refused_summary(*r, layer); !w.empty())
      OCIB_TRY(fs::write_file_atomic("/proc/self/fd/" + std::to_string(fds.at(2)) + "/refused", w));
    return {};
  });
  OCIB_ASSIGN_OR_RETURN(SandboxRun run, run_reported(spec, ids_, reporter_, s.display_id));
  if (run.outcome.exit_code != 0)
    return Error(Errc::kCorrupt, "unpacking layer " + s.result.digest + ": " + run.tail);
  if (auto w = fs::read_file(fs::join(report, "refused")); w.ok() && !w->empty()) reporter_.note("warning: " + *w);
  OCIB_TRY(store_.commit_snapshot(dest_guard.release(), s.result.snapshot));
  return s.result;
}

std::string ascii_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// --cache-from (cache_io.cc reads the sources): the imported records are looked up by key in
// run_step after the store's own cache; a hit brings the blob into the store (from a cache
// directory, or lazily from the registry) and unpacks it into the step's snapshot, so the
// step need not run.
Status Builder::load_cache_imports() {
  OCIB_TRY(check_cache_specs(opts_));
  for (const auto& name : opts_.no_cache_filter) {
    bool known = false;
    for (const auto& st : df_->stages) known = known || (!st.name.empty() && ascii_lower(st.name) == ascii_lower(name));
    if (!known) reporter_.note("warning: --no-cache-filter: no stage named \"" + name + "\" in the Dockerfile");
  }
  for (const auto& from : opts_.cache_from) {
    // The client is made here, before steps run concurrently and fetch blobs through it.
    registry::Client& c = client();
    OCIB_TRY(import_cache(from, store_, c, target_platform_, [this](const std::string& m) { reporter_.note(m); },
                         imported_cache_));
  }
  return {};
}

bool Builder::ignores_cache(const Step& s) const {
  if (opts_.no_cache) return true;
  if (opts_.no_cache_filter.empty()) return false;
  // The stage as the Dockerfile names it (a multi-platform build prefixes "PLATFORM ").
  std::string name = s.stage.substr(s.stage.rfind(' ') + 1);
  for (const auto& f : opts_.no_cache_filter)
    if (ascii_lower(f) == ascii_lower(name)) return true;
  return false;
}

Result<bool> Builder::try_imported_cache(Step& s) {
  auto it = imported_cache_.find(s.key);
  if (it == imported_cache_.end() || s.kind == Step::Kind::kBase || s.kind == Step::Kind::kLinked) return false;
  const CacheRecord& r = it->second.record;
  if (Status got = fetch_cache_blob(it->second, store_, client()); !got.ok()) {
    // A blob that went away (a pruned registry, a partial cache directory) is a miss; one that
    // does not match its digest fails the build.
    if (got.error().code() == Errc::kCorrupt || got.error().code() == Errc::kSecurity) return std::move(got).error();
    reporter_.note("warning: imported cache for " + s.name + " unusable, running it: " + got.error().message());
    return false;
  }
  s.result.snapshot = s.key.substr(0, 20);
  s.result.digest = r.digest;
  s.result.diff_id = r.diff_id;
  s.result.media_type = r.media_type;
  s.result.size = r.size;
  s.result.created = r.created;
  if (!store_.has_snapshot(s.result.snapshot)) {
    auto u = unpack_base(s);
    if (!u.ok()) return std::move(u).error();
  }
  s.cached = true;
  OCIB_TRY(store_.cache_put(s.key, cache_entry(s)));
  return true;
}

Result<CacheRecords> Builder::cache_records(const std::string& mode) const {
  std::set<const Step*> chosen;
  if (mode == "max") {
    for (const auto& s : steps_)
      if (s.kind != Step::Kind::kBase && s.kind != Step::Kind::kLinked && (s.ran || s.cached)) chosen.insert(&s);
  } else {
    for (const Step* s = states_[target_].top; s; s = s->parent) {
      const Step* layer = s->kind == Step::Kind::kLinked ? s->link_src : s;  // under the --link key
      if (layer->kind != Step::Kind::kBase) chosen.insert(layer);
    }
  }
  CacheRecords out;
  for (const Step* s : chosen) {
    if (s->packed.valid()) OCIB_TRY(s->packed.get());
    if (s->result.digest.empty()) continue;
    out[s->key] = {s->result.digest, s->result.diff_id, s->result.media_type, s->result.size, s->result.created, s->name};
  }
  return out;
}

Result<LayerResult> Builder::execute_step(Step& s) {
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);

  sandbox::Spec spec;
  std::vector<fs::FileLock> mount_locks;  // cache mounts with sharing=locked
  spec.lowerdirs = lowers_of(store_, s.parent);
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.network = s.network;
  if (s.network == sandbox::Network::kDefault) {
    static std::once_flag said;
    std::string why = sandbox::network_stack_unavailable();
    if (!why.empty())
      std::call_once(said, [&] {
        log::warn("RUN network: " + why + "; RUN steps use the host's network (in their user namespace) instead of a network namespace of their own");
      });
  }
  if (auto h = opts_.build_args.find(kHostnameArg); h != opts_.build_args.end()) spec.hostname = h->second;
  if (s.kind == Step::Kind::kRun) {
    if (s.emulated) OCIB_TRY(check_emulation(*s.emulated));
    OCIB_ASSIGN_OR_RETURN(auto ids, resolve_user(spec.lowerdirs, s.user));
    spec.uid = ids.first;
    spec.gid = ids.second;
    // Groups outside the user namespace's mapping cannot be set; they are left out.
    for (uint32_t g : supplementary_groups(spec.lowerdirs, s.user, ids.second))
      if (ids_.container_to_host_gid(g)) spec.groups.push_back(g);
    spec.argv = s.argv;
    spec.env = s.env;
    spec.insecure = s.insecure;
    spec.cwd = s.cwd;
    spec.env.insert(spec.env.end(), s.proxy_env.begin(), s.proxy_env.end());
    OCIB_TRY(add_run_mounts(s, spec, spec.env, mount_locks));
  } else if (s.kind == Step::Kind::kWorkdir) {
    OCIB_ASSIGN_OR_RETURN(auto ids, resolve_user(spec.lowerdirs, s.user));
    std::string dir = s.workdir;
    spec.in_sandbox = reporting([dir, ids](const std::vector<int>&) { return make_workdir(dir, ids.first, ids.second); });
  } else {
    CopyOp op = s.copy;
    if (!s.chown_spec.empty()) {
      OCIB_ASSIGN_OR_RETURN(auto ids, resolve_user(s.user_from ? lowers_of(store_, s.user_from) : spec.lowerdirs,
                                                   s.chown_spec));
      op.uid = ids.first;
      op.gid = ids.second;
    }
    if (s.from_context) {
      spec.host_dirs = {s.context_dir.empty() ? opts_.context : s.context_dir};
    } else {
      sandbox::ReadOnlyView view;
      view.layers = lowers_of(store_, s.from_top);
      spec.views = {view};
    }
    spec.in_sandbox = reporting([op](const std::vector<int>& fds) { return copy_into(fds.at(0), op); });
  }

  auto t_run = std::chrono::steady_clock::now();
  OCIB_ASSIGN_OR_RETURN(SandboxRun run, run_reported(spec, ids_, reporter_, s.display_id));
  auto t_ran = std::chrono::steady_clock::now();
  const sandbox::Outcome* outcome = &run.outcome;
  if (outcome->exit_code != 0) {
    if (s.kind != Step::Kind::kRun)
      return Error(Errc::kFailedStep, "copy failed: " + run.tail).with_exit_code(outcome->exit_code);
    std::string proc;
    for (const auto& a : s.argv) proc += (proc.empty() ? "" : " ") + a;
    std::string how = outcome->signal ? "killed by signal " + std::to_string(outcome->signal)
                                      : "exit code: " + std::to_string(outcome->exit_code);
    return Error(Errc::kFailedStep, "process \"" + proc + "\" did not complete successfully: " + how)
        .with_exit_code(outcome->exit_code);
  }

  if (log::debug_enabled())
    log::debug(s.name + ": sandbox " +
               std::to_string(std::chrono::duration<double, std::milli>(t_ran - t_run).count()) + " ms");
  LayerResult res;
  res.snapshot = s.key.substr(0, 20);
  if (store_.has_snapshot(res.snapshot)) {
    // Re-executed (--no-cache): keep the fresh result under a new id; the old snapshot may be a
    // lowerdir of another running build and is left for prune.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
    res.snapshot = s.key.substr(0, 12) + std::string(suffix).substr(0, 12);
  }
  OCIB_TRY(store_.commit_snapshot(upper_guard.release(), res.snapshot));
  res.created = source_date_epoch_ ? *source_date_epoch_
                                   : static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch()).count());
  return res;
}

// The target's config and manifest, written to the store.
Result<BuiltImage> Builder::make_image() {
  const StageState& st = states_[target_];
  std::vector<const Step*> chain;
  for (const Step* s = st.top; s; s = s->parent) chain.push_back(s);
  std::reverse(chain.begin(), chain.end());

  oci::ImageConfig cfg;
  cfg.platform = normalize_platform(st.platform);
  cfg.config = st.config;
  // --label: on the final image only, over the Dockerfile's LABELs (docker build's order).
  for (const auto& [k, v] : opts_.labels) cfg.config.labels[k] = v;
  std::vector<oci::Descriptor> layer_descs;
  int64_t latest = source_date_epoch_.value_or(0);
  for (const Step* s : chain) {
    if (s->packed.valid()) OCIB_TRY(s->packed.get());
  }
  for (const Step* s : chain) {
    cfg.diff_ids.push_back(s->result.diff_id);
    oci::Descriptor d;
    d.media_type = s->result.media_type;
    d.digest = s->result.digest;
    d.size = s->result.size;
    layer_descs.push_back(d);
    if (!source_date_epoch_) latest = std::max(latest, s->result.created);
  }
  // History times come from the layers' own (cached) creation times so a cached rebuild gives
  // the same config, hence the same digest.
  int64_t last_time = chain.empty() ? latest : chain.front()->result.created;
  bool own_layers = false;
  for (const auto& h : st.history) {
    oci::HistoryEntry e;
    e.created_by = h.created_by;
    e.empty_layer = h.empty_layer;
    if (!h.created.empty()) {
      e.created = h.created;  // inherited from the base image
    } else {
      if (h.step) last_time = h.step->result.created;
      e.created = oci::rfc3339(source_date_epoch_ ? *source_date_epoch_ : last_time);
      e.comment = "ocib";
      own_layers = own_layers || h.step;
    }
    cfg.history.push_back(e);
  }
  cfg.created = own_layers || st.base_created.empty() || source_date_epoch_ ? oci::rfc3339(latest) : st.base_created;
  json cfg_json = cfg.to_json();
  // --cache-to type=inline: the cache index travels in the config; its blobs are the layers.
  if (std::any_of(opts_.cache_to.begin(), opts_.cache_to.end(), [](const Output& c) { return c.type == "inline"; })) {
    OCIB_ASSIGN_OR_RETURN(CacheRecords records, cache_records("min"));
    cfg_json[kInlineCacheKey] = inline_cache_json(records);
  }
  std::string config_bytes = oci::canonical(cfg_json);
  OCIB_ASSIGN_OR_RETURN(std::string config_digest, store_.put_blob(config_bytes));
  oci::Descriptor config_desc{oci::kMediaTypeConfig, config_digest, static_cast<int64_t>(config_bytes.size()), {}, {}};
  std::string manifest_bytes = oci::canonical(oci::make_manifest(config_desc, layer_descs));
  OCIB_ASSIGN_OR_RETURN(std::string manifest_digest, store_.put_blob(manifest_bytes));
  BuiltImage out;
  out.manifest_digest = manifest_digest;
  out.manifest_size = static_cast<int64_t>(manifest_bytes.size());
  out.config_digest = config_digest;
  out.platform = normalize_platform(target_platform_);
  out.layers = layer_descs;
  out.diff_ids = cfg.diff_ids;
  return out;
}

// Writes every -o output, the tags and --cache-to. `builds` are the per-platform Builders
// (this one first) and `images` their images: one is a plain image, several an image index
// listing each manifest with its platform.
Result<BuildResult> Builder::export_outputs(const std::vector<Builder*>& builds, const std::vector<BuiltImage>& images) {
  bool multi = images.size() > 1;
  oci::TransferProgress export_progress = [this](const std::string& what, uint64_t cur, uint64_t total) {
    reporter_.transfer(what, cur, total);
  };
  oci::LayoutImage img;
  std::string manifest_digest = images.front().manifest_digest;  // of the result: the index when multi
  std::string config_digest = images.front().config_digest;
  const std::vector<oci::Descriptor>& layer_descs = images.front().layers;
  auto add_blob = [&img](const std::string& d) {
    if (std::find(img.blob_digests.begin(), img.blob_digests.end(), d) == img.blob_digests.end())
      img.blob_digests.push_back(d);
  };
  if (!multi) {
    img.manifest = {oci::kMediaTypeManifest, manifest_digest, images.front().manifest_size, {}, images.front().platform};
  } else {
    std::vector<oci::Descriptor> manifests;
    for (const auto& im : images)
      manifests.push_back({oci::kMediaTypeManifest, im.manifest_digest, im.manifest_size, {}, im.platform});
    std::string index_bytes = oci::canonical(oci::make_image_index(manifests));
    OCIB_ASSIGN_OR_RETURN(manifest_digest, store_.put_blob(index_bytes));
    config_digest.clear();
    img.manifest = {oci::kMediaTypeIndex, manifest_digest, static_cast<int64_t>(index_bytes.size()), {}, {}};
    add_blob(manifest_digest);
  }
  for (const auto& im : images) {
    add_blob(im.manifest_digest);
    add_blob(im.config_digest);
    for (const auto& d : im.layers) add_blob(d.digest);
  }
  if (!opts_.tags.empty()) {
    const std::string& t = opts_.tags.front();
    auto colon = t.rfind(':');
    bool has_tag = colon != std::string::npos && t.find('/', colon) == std::string::npos;
    img.manifest.annotations[oci::kAnnotationRefName] = has_tag ? t.substr(colon + 1) : "latest";
    img.manifest.annotations["io.containerd.image.name"] = has_tag ? t : t + ":latest";
  }
  auto locate = [this](const std::string& d) { return store_.blob_path(d); };
  for (const auto& out : opts_.outputs) {
    auto dest = out.attrs.find("dest");
    if (out.type == "oci" || out.type == "oci-layout") {
      if (dest == out.attrs.end() || dest->second.empty())
        return Error::invalid("output type=" + out.type + " needs dest=");
      reporter_.note("exporting to " + out.type + " " + dest->second);
      if (out.type == "oci") {
        if (export_unchanged(dest->second, "oci", manifest_digest)) {
          reporter_.note("output unchanged: " + dest->second);
        } else {
          OCIB_TRY(oci::write_layout_tar(dest->second, {img}, locate, export_progress));
          record_export(dest->second, "oci", manifest_digest);
        }
      }
      else OCIB_TRY(oci::write_layout_dir(dest->second, {img}, locate, export_progress));
    } else if (out.type == "docker") {
      if (dest == out.attrs.end() || dest->second.empty()) return Error::invalid("output type=docker needs dest=");
      if (multi)
        return Error::invalid("output type=docker holds one image, not " + std::to_string(images.size()) +
                              " platforms: use type=oci or type=oci-layout for a multi-platform image, or build one --platform");
      reporter_.note("exporting to docker-archive " + dest->second);
      oci::DockerArchiveImage di;
      di.config_digest = config_digest;
      di.layers = layer_descs;
      di.diff_ids = images.front().diff_ids;
      for (const auto& t : opts_.tags) di.repo_tags.push_back(normalize_name(t));
      std::string path = dest->second == "-" ? "/dev/stdout" : dest->second;
      if (path != "/dev/stdout" && export_unchanged(path, "docker", manifest_digest)) {
        reporter_.note("output unchanged: " + path);
      } else {
        OCIB_TRY(oci::write_docker_archive(path, di, locate, fs::join(store_.root(), "tmp"), export_progress));
        if (path != "/dev/stdout") record_export(path, "docker", manifest_digest);
      }
    } else if (out.type == "image" || out.type == "registry") {
      // buildx: type=image,name=REF[,push=true]; type=registry is image with push=true.
      std::vector<std::string> names;
      if (auto n = out.attrs.find("name"); n != out.attrs.end()) names = split_commas(n->second);
      if (names.empty()) names = opts_.tags;
      if (names.empty()) return Error::invalid("output type=" + out.type + " needs name= (or -t)");
      bool push = out.type == "registry" || (out.attrs.count("push") && out.attrs.at("push") == "true");
      for (const auto& n : names) {
        OCIB_TRY(store_.tag(normalize_name(n), manifest_digest));
        if (!push) continue;
        OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(n));
        reporter_.note("pushing " + ref.str());
        auto pushed = push_image(store_, client(), manifest_digest, ref);
        if (!pushed.ok()) return std::move(pushed).error().wrap("pushing " + ref.str());
        auto stats = client().stats();
        reporter_.note("pushed " + ref.str() + "@" + *pushed + " (" + std::to_string(stats.uploaded) +
                       " uploaded, " + std::to_string(stats.skipped) + " already there, " +
                       std::to_string(stats.mounted) + " mounted)");
        pushed_.push_back(ref.str() + "@" + *pushed);
      }
    } else if (out.type == "local" || out.type == "tar") {
      if (dest == out.attrs.end() || dest->second.empty())
        return Error::invalid("output type=" + out.type + " needs dest=");
      reporter_.note("exporting filesystem to " + out.type + " " + dest->second);
      // Several platforms: one directory each, named as buildx does (linux_arm64/).
      auto export_all = [&](const std::string& dir) -> Status {
        if (!multi) return export_filesystem(dir);
        for (size_t i = 0; i < builds.size(); ++i) {
          std::string sub = platform_string(images[i].platform);
          std::replace(sub.begin(), sub.end(), '/', '_');
          OCIB_TRY(fs::mkdirs(fs::join(dir, sub)));
          OCIB_TRY(builds[i]->export_filesystem(fs::join(dir, sub)));
        }
        return {};
      };
      if (out.type == "local") {
        OCIB_TRY(fs::mkdirs(dest->second));
        OCIB_TRY(export_all(dest->second));
      } else {
        OCIB_ASSIGN_OR_RETURN(std::string dir, store_.make_tmp_dir("fs-"));
        Staging guard(dir, ids_);
        OCIB_TRY(export_all(dir));
        layers::PackOptions po;
        po.compression = layers::Compression::kNone;
        po.ids = &ids_;
        po.clamp_mtime = source_date_epoch_;
        std::string path = dest->second == "-" ? "/dev/stdout" : dest->second;
        auto packed = layers::pack_dir(dir, path, po);
        if (!packed.ok()) return std::move(packed).error().wrap("writing " + dest->second);
      }
    } else {
      return Error::invalid("output type \"" + out.type + "\" is not supported (oci, oci-layout, docker, image, registry, local, tar)");
    }
  }
  for (const auto& t : opts_.tags) OCIB_TRY(store_.tag(t, manifest_digest));
  // --cache-to: one export per destination, holding every platform's records.
  for (const auto& c : opts_.cache_to) {
    if (c.type == "inline") continue;  // written into the image config by make_image
    CacheRecords records;
    for (Builder* b : builds) {
      OCIB_ASSIGN_OR_RETURN(CacheRecords r, b->cache_records(cache_mode(c)));
      records.insert(r.begin(), r.end());
    }
    OCIB_ASSIGN_OR_RETURN(std::string done, export_cache_records(c, records, store_, client()));
    reporter_.note(done);
  }
  if (multi)
    for (const auto& im : images) reporter_.note(platform_string(im.platform) + " image digest " + im.manifest_digest);
  reporter_.note((multi ? "image index digest " : "image digest ") + manifest_digest);
  for (Builder* b : builds) b->print_summary();
  BuildResult r;
  r.manifest_digest = manifest_digest;
  r.config_digest = config_digest;
  if (!opts_.metadata_file.empty()) OCIB_TRY(write_metadata(r, builds, images));
  // As buildx: a multi-platform build's image ID is its index digest.
  if (!opts_.iidfile.empty()) OCIB_TRY(fs::write_file_atomic(opts_.iidfile, multi ? manifest_digest : config_digest));
  return r;
}

// Archive outputs are deterministic: when the file at dest is still the one this store wrote
// for the same manifest (same inode, size, mtime and ctime), rewriting it would produce the
// same bytes, so a no-op rebuild skips it.
static std::string export_record_path(const store::Store& st, const std::string& dest) {
  auto real = fs::real_path(fs::dirname(dest));
  std::string abs = fs::join(real.ok() ? *real : fs::dirname(dest), fs::basename(dest));
  return fs::join(st.root(), "exports/" + Sha256::hex(abs).substr(0, 32) + ".json");
}

static json stat_fingerprint(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return nullptr;
  return {{"ino", sb.st_ino}, {"size", sb.st_size},
          {"mtime", static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec},
          {"ctime", static_cast<int64_t>(sb.st_ctim.tv_sec) * 1000000000 + sb.st_ctim.tv_nsec}};
}

bool Builder::export_unchanged(const std::string& dest, const std::string& type, const std::string& manifest) {
  if (dest == "-" || dest == "/dev/stdout") return false;
  auto data = fs::read_file(export_record_path(store_, dest));
  if (!data.ok()) return false;
  auto j = json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  json fp = stat_fingerprint(dest);
  return !fp.is_null() && j.value("type", "") == type && j.value("manifest", "") == manifest && j["file"] == fp;
}

void Builder::record_export(const std::string& dest, const std::string& type, const std::string& manifest) {
  json fp = stat_fingerprint(dest);
  if (fp.is_null()) return;
  std::string p = export_record_path(store_, dest);
  if (!fs::mkdirs(fs::dirname(p)).ok()) return;
  (void)fs::write_file_atomic(p, json({{"type", type}, {"manifest", manifest}, {"file", fp}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Explains where the time went: the critical path, the parallelism achieved and cache hits.
void Builder::print_summary() {
  using clock = std::chrono::system_clock;
  std::optional<clock::time_point> first, last;
  double busy = 0;
  int ran = 0, cached = 0;
  std::map<const Step*, double> dur;
  for (const auto& s : steps_) {
    if (s.vid >= report_.timings.size() || !report_.timings[s.vid].ran) continue;
    const auto& t = report_.timings[s.vid];
    double d = std::chrono::duration<double>(t.completed - t.started).count();
    dur[&s] = d;
    busy += d;
    (s.cached ? cached : ran)++;
    if (!first || t.started < *first) first = t.started;
    if (!last || t.completed > *last) last = t.completed;
  }
  if (!first) return;
  double wall = std::chrono::duration<double>(*last - *first).count();
  // Longest path by measured durations, ending at the target's top step.
  std::map<const Step*, std::pair<double, const Step*>> best;  // step -> (path length, predecessor)
  std::function<double(const Step*)> walk = [&](const Step* s) -> double {
    if (auto it = best.find(s); it != best.end()) return it->second.first;
    double b = 0;
    const Step* pred = nullptr;
    for (const Step* d : s->deps) {
      double v = walk(d);
      if (v > b || !pred) {
        b = v;
        pred = d;
      }
    }
    double total = b + dur[s];
    best[s] = {total, pred};
    return total;
  };
  const Step* top = states_[target_].top;
  if (!top) return;
  double crit = walk(top);
  std::vector<const Step*> path;
  for (const Step* s = top; s; s = best[s].second) path.push_back(s);
  BuildSummary sum;
  sum.wall = wall;
  sum.ran = ran;
  sum.cached = cached;
  sum.parallelism = wall > 0 ? busy / wall : 1.0;
  sum.critical = crit;
  for (auto it = path.rbegin(); it != path.rend(); ++it) sum.path.push_back({(*it)->name, dur[*it], (*it)->cached});
  reporter_.summary(sum);
}

// The target's merged filesystem, copied out through a read-only overlay view inside the
// sandbox. As root the owners are kept; rootless, files belong to the caller.
Status Builder::export_filesystem(const std::string& dest_dir) {
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  sandbox::ReadOnlyView view;
  view.layers = lowers_of(store_, states_[target_].top);
  spec.views = {view};
  spec.host_dirs = {dest_dir};
  bool root = ::geteuid() == 0;
  spec.in_sandbox = reporting([root](const std::vector<int>& fds) {
    CopyOp op;
    op.sources = {"."};
    op.dest = "/proc/self/fd/" + std::to_string(fds.at(1)) + "/";
    op.preserve_owner = root;
    return copy_into(fds.at(0), op);
  });
  OCIB_ASSIGN_OR_RETURN(SandboxRun run, run_reported(spec, ids_, reporter_, 0));
  if (run.outcome.exit_code != 0) return Error(Errc::kIo, "exporting filesystem: " + run.tail);
  return {};
}

// `builds`/`images`: every platform's Builder and image (this one first).
Status Builder::write_metadata(const BuildResult& r, const std::vector<Builder*>& builds,
                               const std::vector<BuiltImage>& images) {
  json verts = json::array();
  for (const Builder* b : builds)
    for (const auto& s : b->steps_) {
      if (s.vid >= b->report_.timings.size() || !b->report_.timings[s.vid].ran) continue;
      const auto& t = b->report_.timings[s.vid];
      verts.push_back({{"id", s.display_id}, {"name", s.name}, {"stage", s.stage}, {"cached", s.cached},
                       {"key", s.key}, {"digest", s.result.digest},
                       {"started", epoch_seconds(t.started)}, {"completed", epoch_seconds(t.completed)}});
    }
  json j = {{"containerimage.digest", r.manifest_digest}, {"ocib.vertices", verts}};
  if (images.size() == 1) {
    j["containerimage.config.digest"] = r.config_digest;
  } else {
    // An image index: each platform's manifest and config.
    json per = json::object();
    for (const auto& im : images)
      per[platform_string(im.platform)] = {{"containerimage.digest", im.manifest_digest},
                                           {"containerimage.config.digest", im.config_digest}};
    j["ocib.platforms"] = per;
  }
  if (!opts_.tags.empty()) j["image.name"] = opts_.tags.front();
  if (!pushed_.empty()) j["ocib.pushed"] = pushed_;
  return fs::write_file_atomic(opts_.metadata_file, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace

Result<std::vector<oci::Platform>> parse_platforms(const std::string& spec) {
  std::vector<oci::Platform> out;
  for (const std::string& p : split_commas(spec)) {
    OCIB_ASSIGN_OR_RETURN(oci::Platform pl, parse_platform(p));
    for (const auto& o : out)
      if (same_platform(o, pl)) return Error::invalid("--platform lists " + platform_string(pl) + " twice");
    out.push_back(pl);
  }
  if (out.empty()) return Error::invalid("--platform needs at least one platform (e.g. linux/amd64,linux/arm64)");
  return out;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

Result<Output> parse_output(const std::string& spec) {
  Output out;
  for (const std::string& kv : split_commas(spec)) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) return Error::invalid("invalid output \"" + spec + "\": expected key=value");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "type") out.type = v;
    else out.attrs[k] = v;
  }
  if (auto c = out.attrs.find("compression"); c != out.attrs.end() && c->second != "gzip" &&
      c->second != "zstd" && c->second != "uncompressed")
    return Error::invalid("invalid output \"" + spec + "\": compression must be gzip, zstd or uncompressed");
  if (out.type.empty()) {
    // buildx: "-o path" means type=local; we support only OCI outputs so far.
    return Error::invalid("invalid output \"" + spec + "\": type= is required (oci, oci-layout)");
  }
  return out;
}

Result<BuildResult> run(const Options& opts) {
  auto reporter = make_reporter(opts.progress);
  if (!fs::is_dir(opts.context)) return Error::invalid("build context \"" + opts.context + "\" is not a directory");
  OCIB_ASSIGN_OR_RETURN(std::string context, fs::real_path(opts.context));
  const std::string default_name = dockerfile::default_dockerfile(context);
  std::string dfpath = opts.dockerfile.empty() ? fs::join(context, default_name) : opts.dockerfile;
  auto text = fs::read_file(dfpath);
  if (!text.ok()) return Error::invalid("cannot read Dockerfile " + dfpath + ": " + text.error().message());
  // As BuildKit: bytes that are not UTF-8 (a Latin-1 é) read as U+FFFD, in every instruction.
  *text = dockerfile::utf8(*text);
  std::string shown = opts.dockerfile.empty() ? default_name : opts.dockerfile;
  auto parsed = dockerfile::parse(*text, shown);
  if (!parsed.ok()) {
    const Error& e = parsed.error();
    Error out(e.code(), e.message() + "\n" + dockerfile::render_error_context(*text, e));
    if (e.loc()) out.with_loc(*e.loc());
    return out;
  }
  dockerfile::Dockerfile df = std::move(parsed).value();
  if (!df.syntax.empty())
    reporter->note("note: ignoring `# syntax=" + df.syntax + "`: ocib's Dockerfile frontend is built in");
  std::shared_ptr<dockerfile::Matcher> ignore;
  if (std::string ip = dockerfile::dockerignore_path(context, opts.dockerfile); !ip.empty()) {
    OCIB_ASSIGN_OR_RETURN(std::string itext, fs::read_file(ip));
    auto m = dockerfile::parse_dockerignore(itext);
    if (!m.ok()) return std::move(m).error().wrap(ip);
    ignore = std::make_shared<dockerfile::Matcher>(std::move(m).value());
  }

  OCIB_ASSIGN_OR_RETURN(store::Store st, store::Store::open(opts.store_root.empty() ? store::Store::default_root() : opts.store_root));
  // Held shared for the whole build: `ocib prune` waits instead of deleting what we use.
  OCIB_ASSIGN_OR_RETURN(fs::FileLock gc, store::gc_lock(st, false));
  IdMapping ids = IdMapping::detect();
  if (!opts.plan_only) {
    // Choosing the snapshot driver costs probe steps (in the store's filesystem); a working
    // kernel overlay is remembered per store, uid and kernel. A fallback is said once.
    struct utsname u {};
    ::uname(&u);
    sandbox::ProbeOptions probe;
    probe.cache_file = fs::join(st.root(), "tmp/../probe-" + std::to_string(::getuid()) + "-" + u.release);
    probe.dir = fs::join(st.root(), "tmp");
    OCIB_ASSIGN_OR_RETURN(sandbox::SnapshotDriver driver, sandbox::snapshot_driver(ids, probe));
    if (driver.fallback) log::warn("snapshots: using the " + driver.name + " driver: " + driver.reason);
    OCIB_ASSIGN_OR_RETURN(sandbox::ProcIsolation proc, sandbox::proc_isolation());
    if (proc.fallback) log::warn("isolation: " + proc.name + ": " + proc.reason);
  }
  st.clean_tmp([&ids](const std::string& p) { return sandbox::remove_tree(p, ids); });

  UniqueFd ctx(::open(context.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!ctx.valid()) return Error::from_errno("open context " + context, errno);
  Options o = opts;
  o.context = context;
  // Context file digests by (path, size, mtime, ctime, inode, mode): a no-op rebuild reads no
  // file contents.
  auto hashes = HashCache::load(fs::join(st.root(), "ctxhash/" + Sha256::hex(context).substr(0, 32) + ".json"));
  // One Builder per platform, all on the same store (steps that are the same on every platform,
  // like a FROM --platform=$BUILDPLATFORM stage, run once: the second finds them cached).
  std::vector<oci::Platform> platforms = o.platforms;
  if (platforms.empty()) platforms = {host_platform()};
  for (size_t i = 0; i < platforms.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (same_platform(platforms[i], platforms[j]))
        return Error::invalid("--platform lists " + platform_string(platforms[i]) + " twice");
  std::vector<std::unique_ptr<Builder>> builders;
  // -j bounds the build, not each platform: the platforms' schedulers share the slots.
  std::shared_ptr<dag::JobSlots> slots;
  if (platforms.size() > 1)
    slots = std::make_shared<dag::JobSlots>(o.jobs > 0 ? o.jobs : std::max(4, static_cast<int>(std::thread::hardware_concurrency())));
  for (const auto& p : platforms) {
    int base = builders.empty() ? 0 : builders.back()->last_id();
    builders.push_back(std::make_unique<Builder>(o, st, *reporter, ids, p, platforms.size() > 1));
    Builder& b = *builders.back();
    b.set_job_slots(slots);
    b.set_id_base(base);
    b.set_ignore(ignore);
    b.set_hash_cache(hashes);
    OCIB_TRY(b.plan(df, ctx.get()));
  }
  if (auto saved = hashes->save(); !saved.ok()) log::warn("context hash cache: " + saved.error().str());
  if (o.plan_only) {
    json steps = json::array();
    for (const auto& b : builders) b->describe_plan(steps);
    BuildResult r;
    r.plan = "[\n";
    for (size_t i = 0; i < steps.size(); ++i)
      r.plan += "  " + steps[i].dump(-1, ' ', false, json::error_handler_t::replace) + (i + 1 < steps.size() ? ",\n" : "\n");
    r.plan += "]\n";
    return r;
  }
  for (auto& b : builders) OCIB_TRY(b->load_imports());
  if (builders.size() == 1) {
    OCIB_TRY(builders.front()->execute());
  } else {
    // The platforms build concurrently, as in BuildKit (an emulated one is slow; the others
    // need not wait for it). A failure cancels every sandbox (cancel_all is process-wide), so
    // the error to report is the one that was not a cancellation.
    std::vector<std::future<Status>> running;
    for (auto& b : builders) running.push_back(std::async(std::launch::async, [&b] { return b->execute(); }));
    std::optional<Error> first, cause;
    for (auto& f : running) {
      Status s = f.get();
      if (s.ok()) continue;
      if (!first) first = s.error();
      if (!cause && s.error().code() != Errc::kCancelled) cause = s.error();
    }
    if (cause) return *cause;
    if (first) return *first;
  }
  std::vector<BuiltImage> images;
  std::vector<Builder*> ptrs;
  for (auto& b : builders) {
    OCIB_ASSIGN_OR_RETURN(BuiltImage image, b->make_image());
    images.push_back(std::move(image));
    ptrs.push_back(b.get());
  }
  OCIB_TRY(check_cancelled("build"));  // interrupted after the last layer was packed
  return builders.front()->export_outputs(ptrs, images);
}

}  // namespace ocib::build
