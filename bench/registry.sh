#!/bin/bash
# bench/registry.sh OCIB [ROUNDS]: push and pull of a many-layer image over loopback, ocib
# against `skopeo copy` in the same rounds. LAYERS (default 20) layers of MB_PER_LAYER (default
# 51, so ~1 GiB) MiB of incompressible data, gzip layers (what a registry holds).
#   push: `ocib push` from ocib's store against `skopeo copy oci:LAYOUT docker://…` (the same
#         blobs, read from an OCI layout directory), each into an empty registry;
#   pull: `ocib pull` (blobs into the store, no unpack) against `skopeo copy docker://… oci:DIR`.
# Each round runs both tools back to back; prints medians over ROUNDS (default 3) and the
# median of the per-round ratios ocib / skopeo (below 1: ocib is faster).
set -euo pipefail
ocib=$(realpath "${1:?usage: $0 OCIB [ROUNDS]}")
rounds=${2:-3}
layers=${LAYERS:-20}
mb=${MB_PER_LAYER:-51}
for p in skopeo docker-registry bc curl python3; do command -v $p >/dev/null || { echo "needs $p" >&2; exit 2; }; done
work=$(mktemp -d /tmp/ocib-bench-registry.XXXXXX)
source "$(dirname "$0")/registry-lib.sh"
trap 'stop_registry; rm -rf "$work"' EXIT

# The image: LAYERS layers of random bytes, in ocib's store (tagged) and as an OCI layout.
random_layers_context "$work/ctx" "$layers" "$mb"
export OCIB_ROOT="$work/store"
"$ocib" build -q --network=none -t bench/big:1 -o "type=oci-layout,dest=$work/layout" "$work/ctx" >/dev/null

: >"$work/times"
for r in $(seq "$rounds"); do
  start_registry
  t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$work/layout" "docker://$reg/bench/big:1"; t1=$(now)
  start_registry
  t2=$(now); "$ocib" push --insecure-registry "$reg" bench/big:1 "$reg/bench/big:1" >/dev/null 2>&1; t3=$(now)
  rm -rf "$work/skopeo-pull"
  t4=$(now); skopeo copy -q --src-tls-verify=false "docker://$reg/bench/big:1" "oci:$work/skopeo-pull:big" >/dev/null; t5=$(now)
  rm -rf "$work/skopeo-pull"
  t6=$(now); OCIB_ROOT="$work/pull-store" "$ocib" pull --insecure-registry "$reg" "$reg/bench/big:1" >/dev/null; t7=$(now)
  rm -rf "$work/pull-store"
  echo "$(sec "$t0" "$t1") $(sec "$t2" "$t3") $(sec "$t4" "$t5") $(sec "$t6" "$t7")" >>"$work/times"
done
printf '\n%s layers, ~%s MiB, %s rounds (medians; ratio = ocib / skopeo)\n' "$layers" "$((layers * mb))" "$rounds"
printf 'push: skopeo %6.2f s, ocib %6.2f s, ratio %.2f\n' "$(awk '{print $1}' "$work/times" | median)" \
  "$(awk '{print $2}' "$work/times" | median)" "$(awk '{print $2/$1}' "$work/times" | median)"
printf 'pull: skopeo %6.2f s, ocib %6.2f s, ratio %.2f\n' "$(awk '{print $3}' "$work/times" | median)" \
  "$(awk '{print $4}' "$work/times" | median)" "$(awk '{print $4/$3}' "$work/times" | median)"
[[ -z ${REGISTRY_VERBOSE:-} ]] || { echo "per round (skopeo-push ocib-push skopeo-pull ocib-pull):"; cat "$work/times"; }
