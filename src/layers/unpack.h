#pragma once
// Unpacking: an OCI layer tar (gzip, zstd or plain) -> an overlay snapshot directory (the
// upperdir format: whiteouts are char devices 0:0, opaque dirs carry user.overlay.opaque=y).
// The tar is untrusted: every write is resolved beneath the destination.

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/idmap.h"

namespace ocib::layers {

struct UnpackOptions {
  /// Container ids in the tar -> host ids, used only when the process can chown (euid 0).
  /// nullptr: ids are used as found.
  const IdMapping* ids = nullptr;
  bool verify_diff_id = true;
  /// "sha256:<hex>", checked against the uncompressed stream when non-empty and verify_diff_id.
  std::string expected_diff_id;
};

struct UnpackStats {
  uint64_t entries = 0;  // tar headers read
  uint64_t bytes = 0;    // regular-file bytes written
  /// Entries skipped or neutralised, one "path: reason" each (hostile names, device nodes
  /// without privileges, dropped overlay xattrs, ...): the first kMaxRefusedListed of them.
  std::vector<std::string> refused;
  /// How many there were in all (a hostile layer may hold millions).
  uint64_t refused_total = 0;
  std::string diff_id;  // "sha256:<hex>" of the uncompressed tar, as computed
};

inline constexpr size_t kMaxRefusedListed = 100;

/// The warning to show for a layer whose unpack refused entries, "" when it refused none:
/// "layer sha256:…: 3 entries refused or changed: ../x: '..' component; …; and 1 more". Names
/// and reasons are escaped (log::printable): they come from the tar.
std::string refused_summary(const UnpackStats& stats, const std::string& layer, size_t shown = 5);

/// The xattr that records the intended "uid:gid" (container ids, decimal) of an entry when the
/// process cannot chown (not root). Written only when the owner is not 0:0; never on symlinks
/// (user.* xattrs are not allowed there). The pack side may read it back.
inline constexpr const char* kOwnerXattr = "user.ocib.owner";
/// Fallback whiteout when mknod(0:0) is refused (old kernels, nodev quirks): an empty regular
/// file NAME, mode 0, carrying this xattr = "y". Linux >= 5.8 allows the 0:0 mknod unprivileged,
/// so this is rare.
inline constexpr const char* kWhiteoutXattr = "user.overlay.whiteout";

/// Unpacks the layer at `blob_path` (compression detected by magic: gzip, zstd, else plain tar)
/// into `dest`, an existing empty directory, as an overlay snapshot:
///  - `.wh.NAME` -> char device 0:0 named NAME; `.wh..wh..opq` -> user.overlay.opaque=y on the
///    parent directory (refused in the root);
///  - regular files (streamed, sparse-aware), dirs, symlinks, hardlinks (target must already be
///    inside dest; the link itself is never followed), fifos; device nodes only when euid is 0;
///  - modes including setuid/setgid/sticky, mtimes (dirs last), xattrs except overlay.* and
///    user.ocib.* (dropped, noted) and trusted.*/security.* the kernel refuses (ignored);
///  - ownership: root chowns to ids->container_to_host_*(id); otherwise files stay owned by the
///    caller and kOwnerXattr records the intended ids.
/// Later duplicates replace earlier entries (a dir merges into a dir). Hostile entries ('..'
/// components, writes through symlinks, hardlinks leaving dest, overlong names, whiteouts of
/// '.'/'..') are skipped and listed in `refused`; absolute names lose their leading '/'. A
/// declared size > 64 GiB, a corrupt or truncated stream, or a diff_id mismatch is an error. On
/// error `dest` holds a partial tree: the caller removes it.
Result<UnpackStats> unpack_layer(const std::string& blob_path, const std::string& dest,
                                 const UnpackOptions& opts);

}  // namespace ocib::layers
