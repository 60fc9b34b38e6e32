#pragma once
// `ocib bake`: several targets from a bake file (docker-bake.json / docker-bake.hcl /
// compose.yaml), planned onto one store and solved by one run, as `docker buildx bake`.

#include <optional>
#include <string>
#include <vector>

#include "bake/definition.h"
#include "bake/files.h"
#include "base/error.h"
#include "control/control.h"

namespace ocib::bake {

struct Options {
  std::vector<std::string> files;    // -f/--file (repeatable, in order; "-": stdin); empty: buildx's default lookup
  std::vector<std::string> targets;  // TARGET|GROUP arguments; empty: "default"
  std::vector<std::string> set;      // --set TARGET.KEY=VALUE (as given; TARGET may be * or a pattern)
  bool print = false;                // --print: the resolved definition as JSON, build nothing
  bool list_targets = false;         // --list=targets
  bool push = false;                 // --push: every target's tags pushed
  bool load = false;                 // --load: every target loaded into docker/podman
  bool check = false;                // --call=check / --check: lint every target
  std::string metadata_file;         // --metadata-file: one object keyed by target name
  std::string timeline_file;         // --timeline FILE.html: all targets on one chart
  bool provenance_given = false;     // --provenance/--attest type=provenance given (no default provenance on push)
  /// Settings common to every target (store, registries, network, progress, -j, --allow,
  /// --no-cache, --pull, --provenance/--sbom): each target's build starts from these.
  control::Options common;
};

/// The bake files in buildx's default lookup order that exist in `dir`: compose.yaml,
/// compose.yml, docker-compose.yml, docker-compose.yaml, docker-bake.json, docker-bake.hcl,
/// docker-bake.override.json, docker-bake.override.hcl (all found are read, in this order).
std::vector<std::string> default_files(const std::string& dir);

/// What a bake is about to do: the resolved definition and, unless printing or listing,
/// each target's build options.
struct Loaded {
  Config config;
  Resolved resolved;
  std::vector<std::pair<std::string, control::Options>> builds;  // in the order asked for
};

/// Reads the files, resolves the targets and checks every target's options: every error
/// here is a usage error (exit 2) and is found before any work starts. `env`: the
/// environment variables override `variable` defaults and feed compose interpolation.
Result<Loaded> load(const Options& opts, const Env& env = process_env());

/// Prints, lists, checks or builds what `load` resolved. `out` receives what goes to stdout
/// (--print, --list, --check's warnings).
Status execute(const Options& opts, const Loaded& loaded, std::string* out);

/// The message of the error execute returns when --check (or a target's call = "check")
/// found warnings: the exit status is then 1, the warnings are in `out`.
inline constexpr const char* kCheckWarnings = "check found warnings";

/// load + execute.
Status run(const Options& opts, std::string* out);

}  // namespace ocib::bake
