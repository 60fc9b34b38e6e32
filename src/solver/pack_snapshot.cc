#include "solver/pack_snapshot.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/process.h"
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

// The result.json a packing process left in `outdir` (blob_json's fields).
Result<layers::LayerBlob> read_result(const std::string& outdir, const std::string& where) {
  auto data = fs::read_file(fs::join(outdir, "result.json"));
  if (!data.ok()) return Error(Errc::kIo, where + " left no result");
  auto j = nlohmann::json::parse(*data, nullptr, false);
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
  auto on = fs::read_file("/proc/sys/kernel/sched_autogroup_enabled");
  return on.ok() && on->rfind("1", 0) == 0;
}

Result<layers::LayerBlob> pack_in_own_session(const std::string& snapshot, const std::string& out_path,
                                              const layers::PackOptions& opts, const std::string& outdir) {
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork", errno);
  if (pid == 0) {
    // Keep nothing of the parent's but stdio: a file another thread has open for writing (a
    // COPY in progress) would stay open here for the whole pack, and a step exec'ing that file
    // would fail with ETXTBSY (seen with the chroot isolation).
    (void)::syscall(SYS_close_range, 3u, ~0u, 0u);
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    (void)::setsid();
    lower_session_priority();
    auto blob = layers::pack_dir(snapshot, out_path, opts);
    ::_exit(fs::write_file_atomic(fs::join(outdir, "result.json"), blob_json(blob)).ok() && blob.ok() ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto blob = read_result(outdir, "packing " + snapshot);
  if (blob.ok() && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
    return Error(Errc::kIo, "packing " + snapshot + ": the packing process failed");
  return blob;
}

}  // namespace

Result<layers::LayerBlob> pack_snapshot(const std::string& snapshot, const std::string& out_path,
                                        const layers::PackOptions& opts, const IdMapping& ids,
                                        const std::string& staging) {
  std::string outdir = fs::join(staging, "out");
  if (!ids.needs_helpers && !idle_needs_own_session()) return layers::pack_dir(snapshot, out_path, opts);
  OCIB_TRY(fs::mkdirs(outdir, 0755));
  if (!ids.needs_helpers) return pack_in_own_session(snapshot, out_path, opts, outdir);

  std::string upper = fs::join(staging, "upper"), scratch = fs::join(staging, "scratch");
  for (const auto& d : {upper, scratch}) OCIB_TRY(fs::mkdirs(d, 0755));
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
  OCIB_ASSIGN_OR_RETURN(layers::LayerBlob b, read_result(outdir, "packing in the user namespace"));
  if (::rename(fs::join(outdir, "layer").c_str(), out_path.c_str()) != 0)
    return Error::from_errno("rename packed layer", errno);
  return b;
}

}  // namespace ocib::solver
