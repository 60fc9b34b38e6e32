#pragma once
// `ocib build --print=graph|graph-json|lint`: explains a Dockerfile's stage graph without
// building it.

#include <string>

#include "base/error.h"
#include "control/control.h"

namespace ocib::control {

/// Renders the stage graph of the Dockerfile `opts` names: "graph" (Graphviz DOT), "graph-json",
/// or "lint" (warnings, one per line, "" when clean). Stages are weighted by their number of
/// RUN/COPY/ADD steps; the heaviest chain to the target is the critical path.
Result<std::string> print_plan(const Options& opts, const std::string& what);

}  // namespace ocib::control
