#!/bin/bash
# bench/run.sh [BENCH...]: builds ocib (Release) and runs the reference benchmarks in
# ../shared/bench against a peer in one run. PEER=buildah (default) or PEER=buildkit.
# Prints cold-build and no-op-rebuild seconds and the ratio ocib/peer (below 1 is better).
# Then prints the pack-speed comparison (bench/pack.sh). Needs root (the peers need it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${OCIB_SHARED_BENCH:-$repo/../shared/bench}
[ -x "$shared/compare.sh" ] || [ -f "$shared/compare.sh" ] || { echo "no $shared/compare.sh" >&2; exit 2; }
cmake -S "$repo" -B "$repo/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$repo/build-bench" ocib >/dev/null
bash "$shared/compare.sh" "$repo/build-bench/src/cli/ocib" "$@"
if [ $# -eq 0 ] || [[ " $* " == *" bigcopy "* ]]; then
  bash "$here/pack.sh" "$repo/build-bench/src/cli/ocib"
fi
