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

/// Adapts a Status-returning function to Spec::in_sandbox: an error becomes the step's output
/// (read back by the caller through the output pipe) and exit status 1.
std::function<int(const std::vector<int>&)> reporting(std::function<Status(const std::vector<int>&)> fn);

/// A sandboxed run whose output went to the reporter; `tail` holds its last lines.
struct SandboxRun {
  sandbox::Outcome outcome;
  std::string tail;
};

/// Runs `spec` with its output (stdout and stderr) reported as step `id`'s log.
Result<SandboxRun> run_reported(sandbox::Spec& spec, const IdMapping& ids, progress::Reporter& reporter, int id);

/// The snapshot directories of `s` and the steps below it, topmost first (overlay lowerdirs).
std::vector<std::string> lowers_of(const store::Store& st, const plan::Step* s);

}  // namespace ocib::solver
