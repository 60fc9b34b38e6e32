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

/// COPY --chown and WORKDIR's owner, as BuildKit's file op reads them (readUser): a numeric user
/// without a group takes the uid as gid; a name takes uid and gid from /etc/passwd, 0:0 when it
/// is not there (no error; an image without /etc/passwd is one); a group name missing from
/// /etc/group leaves the gid as it was.
Result<std::pair<uint32_t, uint32_t>> resolve_chown(const std::vector<std::string>& lowers, const std::string& spec);

/// The home directory of the RUN user as runc sets $HOME: from /etc/passwd, "/" when the user is
/// not listed there.
std::string home_dir(const std::vector<std::string>& lowers, const std::string& spec);

/// The supplementary groups of a RUN's user, as current BuildKit sets them: the primary gid
/// first, then (for a user in /etc/passwd without an explicit group) every group listing it.
std::vector<uint32_t> supplementary_groups(const std::vector<std::string>& lowers, const std::string& spec,
                                           uint32_t primary_gid);

}  // namespace ocib::solver
