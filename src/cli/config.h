#pragma once
// ocib's configuration file (TOML), read before the command line so flags override it.
//
//   /etc/ocib/ocib.toml, then $XDG_CONFIG_HOME/ocib/ocib.toml (default ~/.config/ocib/ocib.toml);
//   $OCIB_CONFIG names one file instead of both. Keys follow buildkitd.toml where it has one:
//
//   [store]
//   root = "/var/lib/ocib"            # like $OCIB_ROOT (the environment variable wins)
//   [build]
//   jobs = 8                          # default -j
//   progress = "plain"                # default --progress
//   network = "none"                  # default --network (default, none, host)
//   [sandbox]
//   snapshotter = "overlay"           # like $OCIB_SNAPSHOTTER (the environment variable wins)
//   isolation = "auto"                # like $OCIB_ISOLATION: auto, full, procfs-less, chroot
//   [registry."docker.io"]
//   mirrors = ["mirror.example:5000"] # tried first for images of docker.io
//   [registry."localhost:5000"]
//   insecure = true                   # plain HTTP / unverified TLS (http = true is the same)

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace ocib::cli {

struct Config {
  std::optional<std::string> store_root;
  std::optional<int> jobs;
  std::optional<std::string> progress;
  std::optional<std::string> network;
  std::optional<std::string> snapshotter;
  std::optional<std::string> isolation;  // like $OCIB_ISOLATION
  std::vector<std::string> insecure_registries;
  std::map<std::string, std::vector<std::string>> mirrors;
  std::vector<std::string> files;  // the files read, in order
};

/// Parses one file's text into `cfg` (later files override scalar keys and add to lists).
/// Errors name the file, the line and the cause.
Status parse_config(const std::string& text, const std::string& path, Config& cfg);

/// The files named above that exist, merged. A missing file is not an error; a malformed one is.
Result<Config> load_config();

/// Exports store.root and sandbox.snapshotter as OCIB_ROOT / OCIB_SNAPSHOTTER unless the
/// environment already sets them, so every library that reads them sees the same values.
void apply_config_env(const Config& cfg);

}  // namespace ocib::cli
