#include "solver/pack_snapshot.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "sandbox/sandbox.h"

namespace ocib::solver {
namespace {

std::string blob_json(const Result<layers::LayerBlob>& blob) {
  nlohmann::json j;
  if (blob.ok()) {
    j = {{"digest", blob->digest}, {"diff_id", blob->diff_id}, {"size", blob->size}, {"media_type", blob->media_type}};
  } else {
    j = {{"error", blob.error().str()}};
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<layers::LayerBlob> parse_blob_json(const std::string& data, const std::string& where) {
  auto j = nlohmann::json::parse(data, nullptr, false);
  auto str = [&j](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (j.is_discarded() || !j.is_object() || (j.contains("size") && !j["size"].is_number_integer()))
    return Error(Errc::kIo, where + ": bad result");
  if (j.contains("error")) return Error(Errc::kIo, where + ": " + str("error"));
  layers::LayerBlob b;
  b.digest = str("digest");
  b.diff_id = str("diff_id");
  b.size = j.value("size", int64_t{0});  // an integer, checked above
  b.media_type = str("media_type");
  return b;
}

// Packing at idle priority (SCHED_IDLE) only yields to the build's steps within one scheduler
// autogroup, and every RUN step is a session (an autogroup) of its own, which the kernel weighs
// as an equal of ocib's: idle packing threads in ocib took half the machine from a compile.
// So idle packing runs in a child in a session of its own whose autogroup has the lowest weight.
bool idle_needs_own_session() {
  if (::sched_getscheduler(0) != SCHED_IDLE) return false;
  char c = '0';
  int fd = ::open("/proc/sys/kernel/sched_autogroup_enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool on = ::read(fd, &c, 1) == 1 && c == '1';
  ::close(fd);
  return on;
}

Result<layers::LayerBlob> pack_in_own_session(const std::string& snapshot, const std::string& out_path,
                                              const layers::PackOptions& opts) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(p[0]);
    ::close(p[1]);
    return Error::from_errno("fork", e);
  }
  if (pid == 0) {
    // Keep nothing of the parent's but stdio and the result pipe: a file another thread has
    // open for writing (a COPY in progress) would stay open here for the whole pack, and a
    // step exec'ing that file would fail with ETXTBSY (seen with the chroot isolation).
    int out_fd = p[1];
    if (out_fd > 3) (void)::syscall(SYS_close_range, 3u, static_cast<unsigned>(out_fd - 1), 0u);
    (void)::syscall(SYS_close_range, static_cast<unsigned>(out_fd + 1), ~0u, 0u);
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    (void)::setsid();
    int ag = ::open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
    if (ag >= 0) {
      (void)!::write(ag, "19", 2);
      ::close(ag);
    }
    std::string out = blob_json(layers::pack_dir(snapshot, out_path, opts));
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::write(p[1], out.data() + off, out.size() - off);
      if (n <= 0) ::_exit(1);
      off += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(p[1]);
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || data.empty())
    return Error(Errc::kIo, "packing " + snapshot + ": the packing process failed");
  return parse_blob_json(data, "packing " + snapshot);
}

}  // namespace

Result<layers::LayerBlob> pack_snapshot(const std::string& snapshot, const std::string& out_path,
                                        const layers::PackOptions& opts, const IdMapping& ids,
                                        const std::string& staging) {
  if (!ids.needs_helpers) {
    if (idle_needs_own_session()) return pack_in_own_session(snapshot, out_path, opts);
    return layers::pack_dir(snapshot, out_path, opts);
  }

  std::string upper = fs::join(staging, "upper"), scratch = fs::join(staging, "scratch");
  std::string outdir = fs::join(staging, "out");
  for (const auto& d : {upper, scratch, outdir}) OCIB_TRY(fs::mkdirs(d, 0755));
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.host_dirs = {snapshot, outdir};
  layers::PackOptions inner = opts;
  inner.ids = nullptr;  // inside the namespace the files already show their container ids
  spec.in_sandbox = [inner](const std::vector<int>& fds) -> int {
    std::string dir = "/proc/self/fd/" + std::to_string(fds.at(1));
    auto blob = layers::pack_dir("/proc/self/fd/" + std::to_string(fds.at(0)), dir + "/layer", inner);
    return fs::write_file_atomic(dir + "/result.json", blob_json(blob)).ok() && blob.ok() ? 0 : 1;
  };
  auto outcome = sandbox::run(spec, ids);
  if (!outcome.ok()) return std::move(outcome).error().wrap("packing in the user namespace");
  auto data = fs::read_file(fs::join(outdir, "result.json"));
  if (!data.ok()) return Error(Errc::kIo, "packing in the user namespace left no result");
  OCIB_ASSIGN_OR_RETURN(layers::LayerBlob b, parse_blob_json(*data, "packing in the user namespace"));
  if (::rename(fs::join(outdir, "layer").c_str(), out_path.c_str()) != 0)
    return Error::from_errno("rename packed layer", errno);
  return b;
}

}  // namespace ocib::solver
