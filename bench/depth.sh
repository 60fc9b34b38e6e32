#!/bin/bash
# bench/depth.sh OCIB [OCIB...]: the per-step cost of a RUN as the snapshot chain gets deeper.
# Builds `FROM scratch` + busybox + N trivial RUNs (`echo i > /stepI`, as the manyruns reference
# case) cold (--no-cache, --network=none) for each N in $DEPTHS (default "40 400"), and the base
# alone (N=0) for the fixed cost. Each round runs every binary (or wrapper script, e.g. one that
# sets OCIB_FLATTEN=0) at every depth back to back, so machine noise hits them alike; each binary
# has its own store. Per binary it prints the medians over $ROUNDS (default 3) rounds of the wall
# time, of the marginal cost per RUN step ((total - base) / N), and of the per-round ratio of each
# depth's marginal per-step cost to the first depth's. DEPTH_VERBOSE=1 prints every build.
set -euo pipefail
(($# >= 1)) || { echo "usage: [ROUNDS=3] [DEPTHS='40 400'] depth.sh OCIB [OCIB...]" >&2; exit 2; }
bins=("$@")
rounds=${ROUNDS:-3}
read -r -a depths <<<"${DEPTHS:-40 400}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
for b in "${!bins[@]}"; do  # probes, base snapshots
  OCIB_ROOT="$work/store$b" "${bins[$b]}" build --network=none --progress=quiet "$work/ctx0" >/dev/null
done
declare -A wall marg ratio
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for r in $(seq "$rounds"); do
  for b in "${!bins[@]}"; do
    declare -A t=()
    for n in 0 "${depths[@]}"; do
      t0=$(date +%s.%N)
      OCIB_ROOT="$work/store$b" "${bins[$b]}" build --no-cache --network=none --progress=quiet "$work/ctx$n" >/dev/null
      t1=$(date +%s.%N)
      t[$n]=$(echo "$t1 - $t0" | bc)
      wall[$b,$n]+="${t[$n]} "
      [[ ${DEPTH_VERBOSE:-0} == 1 ]] && echo "round $r: ${bins[$b]}: $n RUNs ${t[$n]} s" >&2
    done
    first=""
    for n in "${depths[@]}"; do
      m=$(echo "(${t[$n]} - ${t[0]}) * 1000 / $n" | bc -l)
      [[ -z $first ]] && first=$m
      marg[$b,$n]+="$m "
      ratio[$b,$n]+="$(echo "$m / $first" | bc -l) "
    done
    # A store that grows by hundreds of snapshots per round would make later rounds slower.
    OCIB_ROOT="$work/store$b" "${bins[$b]}" prune >/dev/null 2>&1 || true
  done
done
echo "depth bench: $rounds rounds, medians; marginal = (total - base) / N, ratio = per-round marginal / the first depth's"
for b in "${!bins[@]}"; do
  printf '%s (base %.3f s)\n' "${bins[$b]}" "$(echo "${wall[$b,0]}" | median)"
  for n in "${depths[@]}"; do
    printf '  %4d RUNs  %7.3f s  marginal %5.1f ms/step  ratio %.2f\n' "$n" "$(echo "${wall[$b,$n]}" | median)" \
      "$(echo "${marg[$b,$n]}" | median)" "$(echo "${ratio[$b,$n]}" | median)"
  done
done
