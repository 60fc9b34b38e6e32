#!/bin/bash
# bench/depth.sh OCIB [ROUNDS] [DEPTHS]: the per-step cost of a RUN as the snapshot chain gets
# deeper. Builds `FROM scratch` + busybox + N trivial RUNs (`echo i > /stepI`, as the manyruns
# reference case) cold (--no-cache, --network=none) for each N in DEPTHS (default "40 400"),
# and a build of the base alone (N=0) for the fixed cost, interleaved round by round so machine
# noise hits every depth alike. Prints medians: wall time, ms per RUN step (total / N) and the
# marginal cost (total - base) / N, and the ratio of each depth's marginal per-step cost to the
# first depth's. OCIB_FLATTEN=0 in the environment measures the unflattened chain (at most ~500).
set -euo pipefail
ocib=${1:?usage: depth.sh OCIB [ROUNDS] [DEPTHS]}
rounds=${2:-3}
read -r -a depths <<<"${3:-40 400}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OCIB_ROOT="$work/store"
for n in 0 "${depths[@]}"; do
  ctx="$work/ctx$n"
  mkdir -p "$ctx"
  cp /bin/busybox "$ctx/busybox"
  {
    echo "FROM scratch"
    echo "COPY busybox /bin/busybox"
    echo 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
    for i in $(seq 0 $((n - 1))); do echo "RUN echo $i > /step$i"; done
  } >"$ctx/Dockerfile"
done
"$ocib" build --network=none --progress=quiet "$work/ctx0" >/dev/null  # probes, base snapshots
declare -A times
for r in $(seq "$rounds"); do
  for n in 0 "${depths[@]}"; do
    t0=$(date +%s.%N)
    "$ocib" build --no-cache --network=none --progress=quiet "$work/ctx$n" >/dev/null
    t1=$(date +%s.%N)
    times[$n]+="$(echo "$t1 - $t0" | bc) "
    [[ ${DEPTH_VERBOSE:-0} == 1 ]] && echo "round $r: $n RUNs $(echo "$t1 - $t0" | bc) s" >&2
  done
  # A store that grows by thousands of snapshots per round would make later rounds slower.
  "$ocib" prune >/dev/null 2>&1 || true
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${times[0]}" | median)
printf 'depth bench, %d rounds, medians (base = FROM scratch + busybox, no RUN: %.3f s)\n' "$rounds" "$base"
first=""
for n in "${depths[@]}"; do
  t=$(echo "${times[$n]}" | median)
  per=$(echo "$t * 1000 / $n" | bc -l)
  marg=$(echo "($t - $base) * 1000 / $n" | bc -l)
  [[ -z $first ]] && first=$marg
  printf '  %4d RUNs  %7.3f s  %5.1f ms/step  marginal %5.1f ms/step  ratio %.2f\n' \
    "$n" "$t" "$per" "$marg" "$(echo "$marg / $first" | bc -l)"
done
