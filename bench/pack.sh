#!/bin/bash
# bench/pack.sh OCIB [ROUNDS]: a cold `ocib build` of one COPY of the bigcopy data (hash the
# context, copy it into the snapshot, pack, write the OCI archive) against `tar | pigz` and
# `tar | zstd -T0` on the same data. Each round runs the four back to back (reference, then
# ocib, for each codec) with a fresh store; prints the medians over ROUNDS (default 3), the
# median of the per-round ratios, and ocib's peak RSS (the largest over the rounds).
set -euo pipefail
ocib=$(realpath "$1")
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
shared=${OCIB_SHARED_BENCH:-$(dirname "$here")/../shared/bench}
ctx=${BENCH_CTX:-/tmp/ocib-bench-ctx}
[ -d "$ctx/bigcopy/data" ] || "$shared/mkctx.sh" "$ctx" >/dev/null
for p in pigz zstd bc; do command -v $p >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
sec() { echo "$2 - $1" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
data="$ctx/bigcopy/data"
# ocib: one COPY of the same data into a scratch image, exported as an OCI tarball.
mkdir -p "$work/ctx"
cp -al "$data" "$work/ctx/data" 2>/dev/null || cp -a "$data" "$work/ctx/data"
printf 'FROM scratch\nCOPY data/ /data/\n' > "$work/ctx/Dockerfile"
tar -C "$data" -cf - . | cat >/dev/null  # warm the page cache for everyone alike
: > "$work/times"
for r in $(seq "$rounds"); do
  for comp in gzip zstd; do
    if [ $comp = gzip ]; then ref() { tar -C "$data" -cf - . | pigz > "$work/ref"; }
    else ref() { tar -C "$data" -cf - . | zstd -q -T0 > "$work/ref"; }; fi
    t0=$(now); ref; t1=$(now)
    export OCIB_ROOT="$work/store-$comp-$r"
    "/usr/bin/time" -f '%M' -o "$work/rss" "$ocib" build -q \
      -o "type=oci,dest=$work/o-$comp.tar,compression=$comp" "$work/ctx" >/dev/null
    t2=$(now)
    echo "$comp $(sec "$t0" "$t1") $(sec "$t1" "$t2") $(cat "$work/rss")" >> "$work/times"
    rm -f "$work/ref" "$work/o-$comp.tar"
  done
done
printf '\n%-6s %10s %12s %7s %12s   (%s rounds, medians)\n' codec ocib-s reference-s ratio ocib-rss-MB "$rounds"
for comp in gzip zstd; do
  refs=$(awk -v c=$comp '$1==c {print $2}' "$work/times" | median)
  ours=$(awk -v c=$comp '$1==c {print $3}' "$work/times" | median)
  ratio=$(awk -v c=$comp '$1==c {print $3/$2}' "$work/times" | median)
  rss=$(awk -v c=$comp '$1==c && $4>m {m=$4} END {print int(m/1024)}' "$work/times")
  name=$([ $comp = gzip ] && echo 'tar | pigz' || echo 'tar | zstd -T0')
  printf '%-6s %10.2f %12.2f %7.2f %12d   (reference: %s)\n' $comp "$ours" "$refs" "$ratio" "$rss" "$name"
done
if [ -n "${PACK_VERBOSE:-}" ]; then echo "per round (codec reference-s ocib-s rss-KB):"; cat "$work/times"; fi
