#pragma once
// `ocib bake`: several targets from a bake file (docker-bake.json / docker-bake.hcl /
// compose.yaml), planned onto one store and solved by one run, as `docker buildx bake`.

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "control/control.h"

namespace ocib::bake {

struct Options {
  std::vector<std::string> files;    // -f/--file (repeatable, in order); empty: buildx's default lookup
  std::vector<std::string> targets;  // TARGET|GROUP arguments; empty: "default"
  std::vector<std::string> set;      // --set TARGET.KEY=VALUE (as given; TARGET may be * or a pattern)
  bool print = false;                // --print: the resolved definition as JSON, build nothing
  bool list_targets = false;         // --list=targets
  bool push = false;                 // --push: every target's tags pushed
  bool load = false;                 // --load: every target loaded into docker/podman
  bool check = false;                // --call=check / --check: lint every target
  std::string metadata_file;         // --metadata-file: one object keyed by target name
  std::string timeline_file;         // --timeline FILE.html: all targets on one chart
  /// Settings common to every target (store, registries, network, progress, -j, --allow,
  /// --no-cache, --pull, --provenance/--sbom): each target's build starts from these.
  control::Options common;
};

/// Runs the bake. `out` receives what goes to stdout (--print / --list).
Status run(const Options& opts, std::string* out);

}  // namespace ocib::bake
