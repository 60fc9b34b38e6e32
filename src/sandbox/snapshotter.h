#pragma once
// Tree work behind the snapshot drivers that are not the kernel overlay: the `copy` driver's
// merged copy and diff, and the normalisation of a fuse-overlayfs upperdir. All of it produces
// or reads snapshots in kernel overlay format (whiteouts as char devices 0:0, opaque directories
// as user.overlay.opaque=y), so every driver leaves the same upperdir for the layer packer and
// any driver can stack on any other's snapshots. These run where the files' owners are mapped
// (inside the user namespace, or as real root): they chown and mknod.

#include <time.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace ocib::sandbox::snapshot {

/// What copy_merged() leaves for diff_to_upper().
struct CopyState {
  /// Every entry copy_merged() wrote has ctime <= since, and any later change is > since.
  timespec since{};
  /// Paths (relative) present below that could not be copied (device nodes where mknod is not
  /// permitted): not reported as deleted.
  std::vector<std::string> skipped;
};

/// Copies the merged view of `lowers` (overlay snapshots, topmost first) into `dest`, an existing
/// empty directory: a real copy (no hardlinks into the snapshots, so nothing the step does can
/// reach them), keeping modes, owners, times, symlinks and xattrs (overlay's own dropped).
/// `clock` is a scratch file path used to wait for the filesystem clock to move past the copy.
Result<CopyState> copy_merged(const std::vector<std::string>& lowers, const std::string& dest,
                              const std::string& clock);

/// Writes into `upper` (an existing, empty directory on the same filesystem as `root`) what
/// changed in `root` (a copy_merged() tree after the step ran) against `lowers`, as the kernel
/// overlay would have: changed or new entries (hardlinked from `root`, which is discarded
/// afterwards), their parent directories with `root`'s metadata, whiteouts for deletions, and
/// opaque directories for directories created where something existed below.
Status diff_to_upper(const std::vector<std::string>& lowers, const std::string& root,
                     const CopyState& state, const std::string& upper);

/// Rewrites a fuse-overlayfs upperdir into kernel overlay format: `.wh.NAME` files become
/// whiteouts, `.wh..wh..opq` / user.fuseoverlayfs.opaque become user.overlay.opaque (only where
/// something exists below, as the kernel marks them), whiteouts with nothing below are dropped,
/// and user.fuseoverlayfs.* xattrs removed. Directory times are kept.
Status normalize_fuse_upper(const std::vector<std::string>& lowers, const std::string& upper);

/// Merges `lowers` (overlay snapshots, topmost first; the bottom one may itself be a merge) into
/// `dest`, an existing empty directory on the same filesystem, as the one directory an overlay
/// of them shows: whiteouts applied, opaque directories hiding what is below, no overlay marker
/// left, so it can stand for the whole stack as its bottom lower. Non-directories are hardlinked
/// from the snapshots (the same inodes: owners, modes, times, xattrs, file capabilities, device
/// nodes and hardlinks between names are kept; copied only past the filesystem's link limit);
/// directories are created with the topmost version's owner, mode, xattrs and times. Layers are
/// applied bottom first, so the work is the size of the layers, not names times depth.
Status flatten(const std::vector<std::string>& lowers, const std::string& dest);

}  // namespace ocib::sandbox::snapshot
