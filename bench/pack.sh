#!/bin/bash
# bench/pack.sh OCIB: packing speed and peak memory on the bigcopy context, against
# `tar | pigz` and `tar | zstd -T0` on the same data, in one run. Prints ratios.
set -euo pipefail
ocib=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
shared=${OCIB_SHARED_BENCH:-$(dirname "$here")/../shared/bench}
ctx=${BENCH_CTX:-/tmp/ocib-bench-ctx}
[ -d "$ctx/bigcopy/data" ] || "$shared/mkctx.sh" "$ctx" >/dev/null
for p in pigz zstd; do command -v $p >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
sec() { echo "$2 - $1" | bc; }
data="$ctx/bigcopy/data"
t0=$(now); tar -C "$data" -cf - . | pigz > "$work/pigz.tgz"; t1=$(now)
tar -C "$data" -cf - . | zstd -q -T0 > "$work/z.tar.zst"; t2=$(now)
pigz_s=$(sec "$t0" "$t1"); zstd_s=$(sec "$t1" "$t2")
# ocib: one COPY of the same data into a scratch image, exported as an OCI tarball.
mkdir -p "$work/ctx"; ln -s "$data" "$work/ctx/data" 2>/dev/null || true
rm -f "$work/ctx/data"; cp -al "$data" "$work/ctx/data" 2>/dev/null || cp -a "$data" "$work/ctx/data"
printf 'FROM scratch\nCOPY data/ /data/\n' > "$work/ctx/Dockerfile"
for comp in gzip zstd; do
  export OCIB_ROOT="$work/store-$comp"
  t0=$(now)
  /usr/bin/time -f '%M' -o "$work/rss-$comp" "$ocib" build -q -o "type=oci,dest=$work/o-$comp.tar,compression=$comp" "$work/ctx" >/dev/null
  t1=$(now)
  eval "ocib_$comp=$(sec "$t0" "$t1")"
done
printf '\n%-6s %10s %12s %7s %12s\n' codec ocib-s reference-s ratio ocib-rss-MB
printf '%-6s %10.2f %12.2f %7s %12d   (reference: tar | pigz)\n' gzip "$ocib_gzip" "$pigz_s" "$(echo "scale=2; $ocib_gzip / $pigz_s" | bc)" $(( $(cat "$work/rss-gzip") / 1024 ))
printf '%-6s %10.2f %12.2f %7s %12d   (reference: tar | zstd -T0)\n' zstd "$ocib_zstd" "$zstd_s" "$(echo "scale=2; $ocib_zstd / $zstd_s" | bc)" $(( $(cat "$work/rss-zstd") / 1024 ))
