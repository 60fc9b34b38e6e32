#!/bin/bash
# bench/network.sh OCIB [ROUNDS]: the per-step cost of RUN's default network (each step its own
# network namespace with slirp4netns) against --network=none, on the manyruns reference case
# (40 trivial RUNs), cold each time (--no-cache), alternating the two modes round by round.
# Prints each mode's median wall time, the per-RUN-step cost and the ratio default / none.
set -euo pipefail
ocib=${1:?usage: network.sh OCIB [ROUNDS]}
rounds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
shared=${OCIB_SHARED_BENCH:-$here/../../shared/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$shared/mkctx.sh" "$work/ctx" >/dev/null
ctx="$work/ctx/manyruns"
steps=$(grep -c '^RUN' "$ctx/Dockerfile")
export OCIB_ROOT="$work/store"
"$ocib" build --network=none "$ctx" >/dev/null 2>&1  # warm the store (base layer, probes)
declare -A times
for r in $(seq "$rounds"); do
  for mode in none default; do
    t0=$(date +%s.%N)
    "$ocib" build --no-cache --progress=quiet --network=$mode "$ctx" >/dev/null
    t1=$(date +%s.%N)
    times[$mode]+="$(echo "$t1 - $t0" | bc) "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
n=$(echo "${times[none]}" | median)
d=$(echo "${times[default]}" | median)
printf 'manyruns (%d RUN steps), %d rounds, medians:\n' "$steps" "$rounds"
printf '  --network=none     %.3f s  (%.1f ms per RUN step)\n' "$n" "$(echo "$n * 1000 / $steps" | bc -l)"
printf '  --network=default  %.3f s  (%.1f ms per RUN step)\n' "$d" "$(echo "$d * 1000 / $steps" | bc -l)"
printf '  ratio default/none %.2f\n' "$(echo "$d / $n" | bc -l)"
