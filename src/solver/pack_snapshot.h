#pragma once
// Packs a snapshot into a layer blob where the files can be read: directly when the caller can
// read everything (root, or a single-id mapping where every file is the caller's), else inside
// the build's user namespace, where the caller is root over its subordinate ids (a rootless
// `apt-get` leaves 0700 directories owned by `_apt`'s subordinate uid, which the unprivileged
// caller cannot open on the host).

#include <string>

#include "base/error.h"
#include "base/idmap.h"
#include "layers/layers.h"

namespace ocib::solver {

/// `opts.ids` maps host ids back for the direct path; inside the namespace stat() already shows
/// container ids. `staging` is an empty directory on the store's filesystem for the sandbox.
Result<layers::LayerBlob> pack_snapshot(const std::string& snapshot, const std::string& out_path,
                                        const layers::PackOptions& opts, const IdMapping& ids,
                                        const std::string& staging);

}  // namespace ocib::solver
