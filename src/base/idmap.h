#pragma once
// User-namespace id mappings, shared by the sandbox (which installs them) and the layer packer
// (which maps host ids found in an upperdir back to container ids).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace ocib {

/// One line of /proc/PID/uid_map: container ids [container, container+count) are host ids
/// [host, host+count).
struct IdRange {
  uint32_t container = 0;
  uint32_t host = 0;
  uint32_t count = 0;
};

struct IdMapping {
  std::vector<IdRange> uids;
  std::vector<IdRange> gids;
  /// True when the maps must be written by newuidmap/newgidmap (subordinate id ranges of an
  /// unprivileged user); false when the caller writes them itself (root, or a single-id map).
  bool needs_helpers = false;
  /// Human-readable description for `ocib info` and warnings: "identity 0-65535 (root)",
  /// "subuid 100000+65536 (newuidmap)", "single id (caller -> 0)".
  std::string description;

  /// Maps a host id to the container id it appears as; nullopt when unmapped.
  std::optional<uint32_t> host_to_container_uid(uint32_t host) const;
  std::optional<uint32_t> host_to_container_gid(uint32_t host) const;
  std::optional<uint32_t> container_to_host_uid(uint32_t c) const;
  std::optional<uint32_t> container_to_host_gid(uint32_t c) const;

  /// Root: identity map of container 0..65535 (and beyond is fine) onto host 0..65535.
  /// Unprivileged with a /etc/subuid+subgid range and newuidmap/newgidmap on PATH:
  /// caller -> 0, range -> 1..count. Otherwise: caller -> 0 only.
  static IdMapping detect();
  /// Caller -> 0 only (no helpers).
  static IdMapping single(uid_t uid, gid_t gid);
};

/// "0 1000 1\n1 100000 65536\n" (the uid_map file format).
std::string format_id_map(const std::vector<IdRange>& ranges);

}  // namespace ocib
