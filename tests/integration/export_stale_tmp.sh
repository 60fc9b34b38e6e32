#!/usr/bin/env bash
# An export killed with SIGKILL leaves its temp file ("DEST.tmp-<pid>-<n>") beside the
# destination. The next export to that destination removes such leftovers whose pid is dead,
# and leaves alone those of a live process (a concurrent export) and those of other
# destinations. Covered: type=oci, type=docker, type=oci-layout (its blobs/ and index.json).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$ctx/Dockerfile"
out="$T/out"
mkdir -p "$out/lay/blobs/sha256"

# A pid that is certainly dead (reaped), and one that is alive for the whole build.
true &
dead=$!
wait "$dead"
kill -0 "$dead" 2>/dev/null && skip "pid $dead was reused at once"
sleep 600 &
live=$!
IT_BG_PIDS+=("$live")

stale=("$out/img.tar.tmp-$dead-123" "$out/d.tar.tmp-$dead-456"
  "$out/lay/blobs/sha256/$(printf 'a%.0s' {1..64}).tmp-$dead-7" "$out/lay/index.json.tmp-$dead-abcdefgh")
kept=("$out/img.tar.tmp-$live-789" "$out/d.tar.tmp-$live-1" "$out/lay/index.json.tmp-$live-x"
  "$out/other.tar.tmp-$dead-5" "$out/img.tar.tmp-notapid")
for f in "${stale[@]}" "${kept[@]}"; do echo partial >"$f"; done

ocib_ok build build -o type=oci,dest="$out/img.tar" -o type=docker,dest="$out/d.tar" \
  -o type=oci-layout,dest="$out/lay" "$ctx"
[[ -s $out/img.tar && -s $out/d.tar && -f $out/lay/index.json ]] || fail "the exports were not written"
for f in "${stale[@]}"; do
  [[ ! -e $f ]] || fail "stale temp file of dead pid $dead survived the export: $f"
done
for f in "${kept[@]}"; do
  [[ -e $f ]] || fail "export removed a temp file it must leave alone: $f"
done
# Nothing of this build's own is left over either.
left=$(find "$out" -name '*.tmp-*' | grep -v -F -e "-$live-" -e "other.tar" -e notapid || true)
[[ -z $left ]] || fail "temp files left beside the outputs: $left"
