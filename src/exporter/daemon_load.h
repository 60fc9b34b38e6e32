#pragma once
// `--load`: a docker-archive handed to a docker daemon (its API on DOCKER_HOST or
// /var/run/docker.sock) or, without one, to `podman load`.

#include <string>

#include "base/error.h"

namespace ocib::exporter {

struct LoadTarget {
  std::string unix_socket;  // the daemon's socket, or
  std::string url;          // http://HOST:PORT for DOCKER_HOST=tcp://
  std::string podman;       // podman's path when no daemon is there
  std::string where;        // "unix:///var/run/docker.sock", "podman", ... for messages
};

/// Where --load goes: DOCKER_HOST (unix:// or tcp:// without TLS), else the default socket,
/// else podman on PATH; an error naming what is missing otherwise (checked before the build).
Result<LoadTarget> load_target();
/// Loads the docker-archive at `archive` into the target.
Status load_archive(const LoadTarget& t, const std::string& archive);

}  // namespace ocib::exporter
