#pragma once
// Layers: an overlay upperdir -> OCI layer tar (whiteouts, opaque dirs, hardlinks, xattrs, ids
// mapped back), compressed and hashed in one streaming pass.

#include <cstdint>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/idmap.h"
#include "oci/image.h"

namespace ocib::layers {

enum class Compression { kGzip, kZstd, kNone };

struct PackOptions {
  Compression compression = Compression::kGzip;
  int level = -1;  // -1: the compressor's default
  /// When set, every entry's mtime is clamped to at most this value (SOURCE_DATE_EPOCH).
  std::optional<int64_t> clamp_mtime;
  /// Maps host ids in the upperdir to container ids; unmapped ids become 0 (and are reported at
  /// debug level). nullptr: ids are written as found.
  const IdMapping* ids = nullptr;
  /// Compression worker threads; 0: one per CPU. The output bytes do not depend on it.
  int threads = 0;
};

using LayerBlob = oci::LayerBlob;

/// Packs `upperdir` into a layer written to `out_path` (created/truncated). Entries are in
/// depth-first order, names sorted bytewise at each level (parents before children), paths
/// relative ("etc/", "etc/passwd"), uname/gname empty, PAX format. Overlay whiteouts (char
/// device 0:0) become `.wh.NAME` files; directories with `trusted.overlay.opaque=y` or
/// `user.overlay.opaque=y` (or fuse-overlayfs' `user.fuseoverlayfs.opaque=y`) get a `.wh..wh..opq`
/// entry; overlay and fuse-overlayfs xattrs are dropped, other
/// xattrs kept (SCHILY.xattr); hardlinks within the tree become tar hardlinks; sockets are
/// skipped. Streams: never holds the layer in memory. Gzip is block-parallel (pigz-style, one
/// gzip member, same bytes for any thread count). out_path is not fsynced (the caller commits
/// it) and is removed on failure. Once cancel_requested() (an interrupted build), it stops
/// before the next entry or file chunk with Errc::kCancelled.
Result<LayerBlob> pack_dir(const std::string& upperdir, const std::string& out_path,
                           const PackOptions& opts);

}  // namespace ocib::layers
