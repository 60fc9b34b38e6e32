#!/usr/bin/env bash
# The cache keys of every step ocib plans for the Dockerfile corpus (tests/dockerfile, parser
# cases, and tests/plan/corpus, build cases) on a reproducible base image and context are the
# ones recorded in tests/plan/keys.golden. A key that changes makes every existing store cold:
# change the golden file only together with a deliberate key change (and say so).
# OCIB_GOLDEN_UPDATE=1 rewrites the golden file instead of comparing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3

src=$(cd "$(dirname "$0")/../.." && pwd)
golden="$src/tests/plan/keys.golden"
# The base image every FROM in the corpus names: byte-identical on every machine.
python3 "$src/tests/plan/make_base.py" "$T/base.tar" amd64
for name in alpine alpine:3.19 busybox debian golang golang:1.22 python:3.12 nginx:latest; do
  "$OCIB" import "$T/base.tar" "$name" >/dev/null
done
# The context: files with fixed content and modes (the digest ignores times and inodes).
ctx="$T/ctx"
cp -a "$src/tests/plan/context" "$ctx"
chmod -R u=rwX,go=rX "$ctx"
# Nothing here may leave the machine: bases are never pulled, and ADD's URL download (plan time)
# goes to a proxy on a closed loopback port.
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
  HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 no_proxy= NO_PROXY=
out="$T/keys"
: >"$out"
for df in "$src"/tests/dockerfile/*.Dockerfile "$src"/tests/plan/corpus/*.Dockerfile; do
  name=$(basename "$df")
  cp "$df" "$ctx/Dockerfile"
  printf '== %s\n' "$name" >>"$out"
  # Build args and the platform are fixed: TARGET*/BUILD* come from the host, which must be
  # linux/amd64 for the golden keys (other hosts skip below).
  if "$OCIB" build --print=plan --pull=never --progress=plain --build-arg VERSION=3.19 "$ctx" >"$T/plan.json" 2>"$T/err"; then
    python3 - "$T/plan.json" >>"$out" <<'PY'
import json, sys
for v in json.load(open(sys.argv[1])):
    print(v["key"], v["kind"], v["name"].replace("\n", "\\n"), "deps=" + ",".join(map(str, v["deps"])),
          "target" if v["target"] else "")
PY
  else
    # The first line of the error: what planning refused (no key at all).
    printf '%s\n' "$(grep -m1 'error' "$T/err" | sed -e "s#$T#T#g" -E -e 's/ after [0-9]+ ms//')" >>"$out"
  fi
done
[[ $(uname -m) == x86_64 ]] || skip "the golden keys are recorded for linux/amd64 hosts (TARGETPLATFORM is an input)"
if [[ ${OCIB_GOLDEN_UPDATE:-} == 1 ]]; then
  cp "$out" "$golden"
  log "golden file rewritten: $golden"
  exit 0
fi
if ! diff -u "$golden" "$out" >"$T/diff"; then
  head -60 "$T/diff" >&2
  fail "cache keys differ from tests/plan/keys.golden (every store would go cold)"
fi
n=$(grep -c '^[0-9a-f]\{64\} ' "$out")
[[ $n -ge 100 ]] || fail "only $n keys planned: the corpus no longer plans"
log "ok: $n step keys identical to the golden file"
