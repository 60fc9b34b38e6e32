#!/bin/bash
# bench/wide.sh OCIB: a wide Dockerfile, N independent stages on one base (default N=256), each
# one trivial RUN, and a final stage that COPY --from's every stage's file (the shape of a
# monorepo's per-package stages). Measures, for a cold build (empty cache, base image reused):
#   - plan: `ocib build --print=plan` (parse, plan, keys; nothing runs), median of 5;
#   - build wall time, and the CPU it used (user+sys of ocib and its sandboxes) over wall time
#     and cores: 1.00 means every core was busy the whole build;
#   - the same build under BuildKit when PEER=buildkit (`docker build`, reference daemon).
# ROUNDS=N (default 3) alternates the builders; medians are printed. Needs root and busybox.
set -euo pipefail
(($# >= 1)) || { echo "usage: [N=256] [ROUNDS=3] [PEER=buildkit] wide.sh OCIB" >&2; exit 2; }
ocib=$(realpath "$1")
n=${N:-256}
rounds=${ROUNDS:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
{
  echo "FROM scratch AS base"
  echo "COPY busybox /bin/busybox"
  for i in $(seq 1 "$n"); do
    echo "FROM base AS s$i"
    echo "RUN [\"/bin/busybox\",\"sh\",\"-c\",\"echo $i > /f$i\"]"
  done
  echo "FROM base"
  for i in $(seq 1 "$n"); do echo "COPY --from=s$i /f$i /"; done
} >"$ctx/Dockerfile"
cores=$(nproc)
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/plan"
for _ in 1 2 3 4 5; do
  t0=$(now)
  OCIB_ROOT=$work/store "$ocib" build --print=plan "$ctx" >/dev/null
  echo "$(now) - $t0" | bc >>"$work/plan"
done

bk_ref=/work/shared/reference/buildkit.sh
[[ -x $bk_ref ]] || bk_ref=$here/../../shared/reference/buildkit.sh
bk() { DOCKER_HOST=unix://${BK_WORK:-/tmp/ocib-bk-ref}/docker.sock DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }
if [[ ${PEER:-} == buildkit ]]; then
  mkdir -p "$work/bkinit" && printf 'FROM scratch\n' >"$work/bkinit/Dockerfile"
  BK_OUT=$work/bk-init "$bk_ref" "$work/bkinit" >/dev/null 2>&1 || true
fi

: >"$work/wall"; : >"$work/busy"; : >"$work/bk"; : >"$work/ratio"
for r in $(seq "$rounds"); do
  rm -rf "$work/store"
  # GNU time: elapsed, user, sys of ocib and every process it waited for (the sandboxes).
  /usr/bin/time -f '%e %U %S' -o "$work/t" env OCIB_ROOT="$work/store" "$ocib" build --network=none \
    --progress=plain -o type=oci,dest="$work/out.tar" "$ctx" >"$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
  read -r e u s <"$work/t"
  echo "$e" >>"$work/wall"
  echo "($u + $s) / $e / $cores" | bc -l >>"$work/busy"
  line=$(printf 'round %s: ocib %.2f s, CPU busy %.2f' "$r" "$e" "$(echo "($u + $s) / $e / $cores" | bc -l)")
  if [[ ${PEER:-} == buildkit ]]; then
    bk builder prune -af >/dev/null 2>&1 || true
    t0=$(now)
    bk build --progress=plain --network=none -t ocib-wide "$ctx" >"$work/bklog" 2>&1 || { tail -20 "$work/bklog" >&2; exit 1; }
    b=$(echo "$(now) - $t0" | bc)
    echo "$b" >>"$work/bk"
    echo "$e / $b" | bc -l >>"$work/ratio"
    line+=$(printf ', BuildKit %.2f s, ratio %.2f' "$b" "$(echo "$e / $b" | bc -l)")
  fi
  echo "$line"
done
printf 'N=%s stages: plan %.3f s; cold build %.2f s, CPU busy %.2f of %s cores' "$n" "$(median <"$work/plan")" \
  "$(median <"$work/wall")" "$(median <"$work/busy")" "$cores"
[[ ! -s $work/bk ]] || printf '; BuildKit %.2f s, ratio %.2f' "$(median <"$work/bk")" "$(median <"$work/ratio")"
printf '  (medians of %s rounds)\n' "$rounds"
