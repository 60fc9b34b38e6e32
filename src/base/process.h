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

}  // namespace ocib
