#!/bin/bash
# bench/pull.sh OCIB [OCIB2] [ROUNDS]: a cold `FROM` of a many-layer image from a loopback
# registry (download + unpack into snapshots, then one trivial RUN) against the download alone
# (`skopeo copy docker://… oci:DIR`, which unpacks nothing). LAYERS (default 20) layers of
# MB_PER_LAYER (default 25) MiB of incompressible data. Each round runs the builders back to
# back with fresh stores (and a fresh skopeo destination); prints the medians over ROUNDS
# (default 3) and the median of the per-round ratios to the download alone. A second ocib binary
# (before/after) is measured in the same rounds.
set -euo pipefail
ocibs=()
rounds=3
for a in "$@"; do
  if [[ $a =~ ^[0-9]+$ ]]; then rounds=$a; else ocibs+=("$(realpath "$a")"); fi
done
[[ ${#ocibs[@]} -ge 1 ]] || { echo "usage: $0 OCIB [OCIB2] [ROUNDS]" >&2; exit 2; }
layers=${LAYERS:-20}
mb=${MB_PER_LAYER:-25}
for p in skopeo docker-registry bc curl; do command -v $p >/dev/null || { echo "needs $p" >&2; exit 2; }; done
work=$(mktemp -d /tmp/ocib-bench-pull.XXXXXX)
source "$(dirname "$0")/registry-lib.sh"
trap 'stop_registry; rm -rf "$work"' EXIT
start_registry

# The image: LAYERS layers of random bytes, built by ocib, pushed with skopeo.
random_layers_context "$work/ctx" "$layers" "$mb"
OCIB_ROOT="$work/store-make" "${ocibs[0]}" build -q --network=none -o "type=oci,dest=$work/img.tar" "$work/ctx" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci-archive:$work/img.tar" "docker://$reg/bench/big:1"
rm -rf "$work/store-make" "$work/img.tar"
printf 'FROM %s/bench/big:1\nRUN ["/bin/busybox", "true"]\n' "$reg" >"$work/ctx/Dockerfile.from"

: >"$work/times"
for r in $(seq "$rounds"); do
  t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$reg/bench/big:1" "oci:$work/skopeo-$r:big" >/dev/null
  t1=$(now)
  rm -rf "$work/skopeo-$r"
  line="$(sec "$t0" "$t1")"
  for b in "${!ocibs[@]}"; do
    export OCIB_ROOT="$work/store-$b-$r"
    t2=$(now)
    "${ocibs[$b]}" build -q --network=none --insecure-registry "$reg" -f "$work/ctx/Dockerfile.from" "$work/ctx" >/dev/null
    t3=$(now)
    "${ocibs[$b]}" prune -a >/dev/null 2>&1 || true
    rm -rf "$OCIB_ROOT"
    line+=" $(sec "$t2" "$t3")"
  done
  echo "$line" >>"$work/times"
done
total=$((layers * mb))
printf '\n%s layers, ~%s MiB, %s rounds (medians; ratio = cold FROM / download alone)\n' "$layers" "$total" "$rounds"
printf '%-28s %8.2f s\n' "skopeo copy (download only)" "$(awk '{print $1}' "$work/times" | median)"
for b in "${!ocibs[@]}"; do
  col=$((b + 2))
  printf '%-28s %8.2f s   ratio %.2f\n' "ocib[$b] cold FROM + RUN" "$(awk -v c=$col '{print $c}' "$work/times" | median)" \
    "$(awk -v c=$col '{print $c/$1}' "$work/times" | median)"
done
[[ -z ${PULL_VERBOSE:-} ]] || { echo "per round (skopeo ocib...):"; cat "$work/times"; }
