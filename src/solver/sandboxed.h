#pragma once
// Running work in the sandbox on the build's behalf: its output streamed to the progress
// reporter line by line, staging directories removed on every path.

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/idmap.h"
#include "base/log.h"
#include "plan/plan.h"
#include "progress/progress.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace ocib::solver {

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

/// Work done inside the sandbox by ocib itself (COPY, WORKDIR's mkdir, unpacking a layer,
/// exporting a filesystem). Receives the fds Spec::in_sandbox gives it; returns a payload for
/// the caller (what it has to tell, e.g. entries it refused) or an error.
using SandboxFunction = std::function<Result<std::string>(const std::vector<int>& fds)>;

/// A sandboxed run whose output went to the reporter; `tail` holds its last lines.
struct SandboxRun {
  sandbox::Outcome outcome;
  std::string tail;
};

/// Runs `spec` with its output (stdout and stderr) reported as step `id`'s log.
Result<SandboxRun> run_reported(sandbox::Spec& spec, const IdMapping& ids, progress::Reporter& reporter, int id);

/// Runs `fn` in the sandbox `spec` describes (its output reported as step `id`'s log) and brings
/// its result back through one typed channel: the payload, or the error with its code and
/// message as `fn` returned it. A run that ends without a result (killed, crashed) is an error
/// with the output's last lines.
Result<std::string> run_function(sandbox::Spec& spec, const IdMapping& ids, progress::Reporter& reporter, int id,
                                 SandboxFunction fn);

/// The snapshot directories of `s` and the steps below it, topmost first (overlay lowerdirs); for
/// a deep chain, the bottom of it as a flattened lower (solver/flatten.h) when a Solver is
/// attached to the store.
std::vector<std::string> lowers_of(const store::Store& st, const plan::Step* s);

}  // namespace ocib::solver
