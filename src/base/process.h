#pragma once
// Running a helper program (git, podman) and capturing what it says.

#include <string>
#include <vector>

#include "base/error.h"

namespace ocib {

/// Runs argv (argv[0] looked up on PATH; no shell) with stdin from /dev/null and stdout and
/// stderr both appended to *output; `extra_env` ("K=V") is added to this process's environment.
/// Returns the exit status (128+N when killed by signal N); an Error (errno kept) only when the
/// program could not be started.
Result<int> run_captured(const std::vector<std::string>& argv, std::string* output,
                         const std::vector<std::string>& extra_env = {});

/// Makes the calling thread, and the threads and processes it starts afterwards, run only on
/// CPU time nothing else wants (SCHED_IDLE) and in the idle I/O class: for speculative work
/// (packing layers before the export needs them) that must not slow the build's own steps. Nice 10
/// was not enough: its CFS weight still took ~10% of each core from two parallel compiles.
/// One way: an unprivileged thread cannot leave SCHED_IDLE (RLIMIT_NICE), so call it on a thread
/// that does only such work. Best effort: where it is refused the thread keeps its priority.
void run_at_idle_priority();

/// For a process that just called setsid(): a new session is a new scheduler autogroup, and
/// autogroups share the CPU as equals whatever the priority of the tasks inside, so the new
/// one gets the calling thread's lower priority (nice N, or 19 under SCHED_IDLE; raising nice
/// needs no privilege). Nothing changes at nice 0. Async-signal-safe (system calls only), for
/// use between fork and exec.
void lower_session_priority();

}  // namespace ocib
