#pragma once
// Users and groups of an image, read from its layers' /etc/passwd and /etc/group (never
// following a symlink out of a layer), as runc's user lookup does for BuildKit.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace ocib::solver {

/// A file of the image whose layers are `lowers` (topmost first), honouring whiteouts of the
/// file itself; resolved beneath each layer without following symlinks, at most 16 MiB.
std::optional<std::string> read_image_file(const std::vector<std::string>& lowers, const std::string& path);

/// "user[:group]" -> uid, gid, resolving names through the image's /etc/passwd and /etc/group.
Result<std::pair<uint32_t, uint32_t>> resolve_user(const std::vector<std::string>& lowers, const std::string& spec);

/// The supplementary groups of a RUN's user, as current BuildKit sets them: the primary gid
/// first, then (for a user in /etc/passwd without an explicit group) every group listing it.
std::vector<uint32_t> supplementary_groups(const std::vector<std::string>& lowers, const std::string& spec,
                                           uint32_t primary_gid);

}  // namespace ocib::solver
