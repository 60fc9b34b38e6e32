#pragma once
// The Dockerfile planner (BuildKit's dockerfile2llb): a parsed Dockerfile and the build's
// request -> a Plan of content-addressed steps for one platform.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "copy/copy.h"
#include "dockerfile/dockerfile.h"
#include "oci/image.h"
#include "plan/plan.h"
#include "plan/sources.h"

namespace ocib::plan {

/// A --build-context NAME=VALUE, opened by the caller: a local directory (COPY --from, RUN
/// --mount from=) or an image (FROM, COPY --from). Wins over a stage of the same name.
struct NamedContext {
  std::string dir;  // real path of a local directory
  std::shared_ptr<UniqueFd> fd;
  copy::SourceFilter filter;  // the directory's own .dockerignore (BuildKit applies it)
  std::string image;  // docker-image://REF: REF; oci-layout://...: the value itself
};

struct Request {
  std::string target;  // stage name; "" = the last stage
  std::map<std::string, std::string> build_args;
  Network network = Network::kDefault;  // --network
  /// --add-host (host, address) and --shm-size (bytes, 0 = default): every RUN's, in its key
  /// as in BuildKit's ExecOp.
  std::vector<std::pair<std::string, std::string>> extra_hosts;
  uint64_t shm_size = 0;
  std::vector<Step::Ulimit> ulimits;  // --ulimit, in the key as BuildKit's ExecOp ulimits
  /// --allow entitlements: security.insecure, network.host.
  std::vector<std::string> allow;
  std::map<std::string, NamedContext> named_contexts;  // by lowercased name
  oci::Platform platform;       // the target platform
  bool multi_platform = false;  // several platforms: step and stage names carry theirs
  int id_base = 0;              // progress ids start after it
  /// The build context: a directory fd and what .dockerignore leaves out (and its hash cache).
  int context_fd = -1;
  copy::SourceFilter context_filter;
  /// An outline (--print graph, lint): plan every stage, not only those the target needs, as
  /// far as each goes (an instruction that cannot be planned is skipped, a stage whose FROM
  /// cannot is left unplanned); ADD URLs are not downloaded. Keys are then not a build's.
  bool outline = false;
};

/// Plans the stages the target needs. Errors name the Dockerfile line.
Result<Plan> make_plan(const dockerfile::Dockerfile& df, const Request& request, Sources& sources);

/// BuildKit's predefined platform ARGs: TARGET* for `target`, BUILD* the host's.
std::map<std::string, std::string> platform_args(const oci::Platform& target);

/// Build args usable without an ARG (the proxies), kept out of cache keys and the history.
bool is_proxy_arg(const std::string& name);

}  // namespace ocib::plan
