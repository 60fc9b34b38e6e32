#!/usr/bin/env bash
# Progress output: the plain and rawjson event sequences of a deterministic build (-j 1, a
# linear Dockerfile) match golden files once timings and digests are normalised, for a cold
# build, a cached rebuild and a failing build; the tty view, driven through a real
# pseudo-terminal, redraws running steps and colours them unless NO_COLOR is set.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd script python3
golden="$(cd "$(dirname "$0")" && pwd)/golden"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo hello; echo world"]

FROM base
ENV GREETING=hi
RUN ["/bin/busybox", "touch", "/x"]
DF
cat >"$ctx/Dockerfile.fail" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]
DF

# Timings, digests and temp paths vary between runs; everything else must not.
# Byte transfers (how many lines depends on timing) are checked apart from the golden files.
norm_plain() {
  grep -vE '^((exporting|pushing|pulling) sha256:[0-9a-f]{12}|hashing context) ' "$1" |
  sed -E -e 's/^(#[0-9]+) [0-9]+\.[0-9]{3} /\1 T /' \
    -e 's/DONE [0-9]+\.[0-9]+s/DONE Xs/' \
    -e 's/sha256:[0-9a-f]{64}/sha256:D/g' \
    -e 's/[0-9]+\.[0-9]+(s|x)/N\1/g' \
    -e "s#$T#\$T#g"
}
norm_json() {
  jq -c 'select(.type != "transfer") | del(.time, .duration, .wall, .parallelism, .critical_path_duration)
         | if .critical_path then .critical_path |= map(del(.duration)) else . end
         | if .message then .message |= (gsub("sha256:[0-9a-f]{64}"; "sha256:D")
             | gsub("[0-9]+\\.[0-9]+(?<u>s|x)"; "N\(.u)")) else . end' "$1" | sed "s#$T#\$T#g"
}
compare() { # NAME ACTUAL-FILE
  if [[ ${OCIB_UPDATE_GOLDEN:-0} == 1 ]]; then
    cp "$2" "$golden/$1"
    log "updated golden/$1"
    return
  fi
  diff -u "$golden/$1" "$2" >&2 || fail "progress output differs from golden/$1 (OCIB_UPDATE_GOLDEN=1 rewrites it)"
}

# 1. plain, cold then cached.
ocib_ok plain1 build -j 1 --progress=plain -o type=oci,dest="$T/o.tar" "$ctx"
norm_plain "$T/plain1.err" >"$T/plain1.norm"
compare progress_plain_cold.txt "$T/plain1.norm"
# Each blob written to the archive ends with a "size / size" line.
blobs=$(tar -tf "$T/o.tar" | grep -c '^blobs/sha256/.')
done_lines=$(grep -cE '^exporting sha256:[0-9a-f]{12} ([0-9.]+[kMG]?B) / \1 [0-9.]+s$' "$T/plain1.err" || true)
assert_eq "$done_lines" "$blobs" "completed export transfer lines (one per blob)"
# The context's files were read for hashing once (the busybox), and said so in bytes.
contains -E '^hashing context ([0-9.]+[kMG]?B) / \1 [0-9.]+s$' "$T/plain1.err" || fail "no context hashing progress"
ocib_ok plain2 build -j 1 --progress=plain -o type=oci,dest="$T/o.tar" "$ctx"
norm_plain "$T/plain2.err" >"$T/plain2.norm"
compare progress_plain_cached.txt "$T/plain2.norm"

# 2. rawjson on a fresh store (every line is one JSON object), then a failing build.
export OCIB_ROOT="$T/store2"
ocib_ok json1 build -j 1 --progress=rawjson -o type=oci,dest="$T/o.tar" "$ctx"
jq -e . "$T/json1.err" >/dev/null || fail "rawjson output is not one JSON value per line"
norm_json "$T/json1.err" >"$T/json1.norm"
# rawjson transfer events: every blob's last event has current == total.
jq -s -e '[.[] | select(.type == "transfer")] | group_by(.name) | length >= 3 and all(.[]; .[-1].current == .[-1].total)' \
  "$T/json1.err" >/dev/null || fail "rawjson transfer events incomplete: $(grep transfer "$T/json1.err" | head -5)"
compare progress_rawjson_cold.jsonl "$T/json1.norm"
rc=0
ocib_run json2 build -j 1 --progress=rawjson -f "$ctx/Dockerfile.fail" "$ctx" || rc=$?
assert_eq "$rc" 1 "exit status of a failing RUN"
# The last event is the error (ocib's own "ocib: error:" message is not JSON and comes last;
# it ends with the failing Dockerfile line).
grep '^{' "$T/json2.err" >"$T/json2.events"
norm_json "$T/json2.events" >"$T/json2.norm"
compare progress_rawjson_fail.jsonl "$T/json2.norm"
grep -v '^{' "$T/json2.err" | head -n 1 | contains -E '^ocib: error: .*Dockerfile.fail:[0-9]+: ' ||
  fail "failing build does not end with ocib: error: naming the line ($(grep -v '^{' "$T/json2.err" | head -3))"
if tail -n +"$(grep -n '^ocib: error: ' "$T/json2.err" | cut -d: -f1)" "$T/json2.err" | grep -q '^{'; then
  fail "a JSON event after the error"
fi

# 3. tty through a pseudo-terminal: `script` gives ocib a terminal on stdin/stdout/stderr.
export OCIB_ROOT="$T/store3"
cat >"$ctx/Dockerfile.slow" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "for i in 1 2 3 4; do echo line-$i; done; /bin/busybox sleep 1"]
DF
tty_build() { # OUT [ENV...]
  local out=$1
  shift
  env "$@" TERM=xterm script -qefc "$OCIB build -j 1 -f $ctx/Dockerfile.slow $ctx" "$out" >/dev/null
}
tty_build "$T/tty.typescript"
# A live block was drawn and erased (cursor up + erase line), the running step showed its
# last three output lines (not the first) and a timer, finished steps are green.
contains -F $'\e[1A\e[2K' "$T/tty.typescript" || fail "tty view never redrew its live block"
contains -F 'line-4' "$T/tty.typescript" || fail "tty view did not show the step's output"
python3 - "$T/tty.typescript" <<'PY' || fail "tty view did not show the last three output lines of the running step"
import re, sys
data = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
# Each redraw lists the step's tail under its timer; the last redraw before the step ended
# holds line-2..line-4 and no longer line-1.
frames = [f for f in re.split('(?:\x1b\\[1A\x1b\\[2K)+', data) if 'line-4' in f]
ok = any(('line-2' in f and 'line-3' in f and 'line-1' not in f) for f in frames)
sys.exit(0 if ok else 1)
PY
contains -F $'\e[32m => ' "$T/tty.typescript" || fail "finished step not coloured on a terminal"
contains -E '=> +[0-9]+\.[0-9]s .*RUN' "$T/tty.typescript" || fail "no elapsed timer for the RUN step"
rm -rf "$T/store3"
tty_build "$T/tty-nocolor.typescript" NO_COLOR=1
contains -F $'\e[1A' "$T/tty-nocolor.typescript" || fail "NO_COLOR must keep the live view"
if contains -E $'\e\\[3[0-9]m' "$T/tty-nocolor.typescript"; then fail "NO_COLOR output has colour codes"; fi
# --progress=auto into a pipe is plain; --progress=tty into a file has no colour.
rm -rf "$T/store3"
ocib_ok auto build -j 1 -f "$ctx/Dockerfile.slow" "$ctx"
contains -E '^#[0-9]+ DONE' "$T/auto.err" || fail "--progress=auto on a pipe is not plain"
rm -rf "$T/store3"
ocib_ok ttyfile build -j 1 --progress=tty -f "$ctx/Dockerfile.slow" "$ctx"
if contains -E $'\e\\[3[0-9]m' "$T/ttyfile.err"; then fail "--progress=tty on a non-terminal has colour codes"; fi
