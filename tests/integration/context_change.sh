#!/usr/bin/env bash
# A file of the build context rewritten after planning (during a long RUN) but before the COPY
# or ADD that reads it: the step's cache key was computed from the old content, so the build
# must either fail naming the file or record what it really copied; a rebuild with the
# original content must then never be served the new content from the cache.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"

# race NAME DOCKERFILE-TAIL FILE NEW-CONTENT-COMMAND: builds with a `RUN sleep 3` before the
# tail (its own per NAME, so no earlier build's cache skips it), runs the command (which
# rewrites FILE in the context) during the sleep, and checks the outcome: a failure must say
# "build context changed during the build: FILE".
race() {
  local name=$1 tail=$2 file=$3 rewrite=$4
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\nRUN sleep 3 && echo %s\n%s\n' \
    "$name" "$tail" >"$ctx/Dockerfile"
  rm -rf "$T/$name.local"
  "$OCIB" build --progress=plain -o type=local,dest="$T/$name.local" "$ctx" >"$T/$name.log" 2>&1 &
  local pid=$! _
  for _ in $(seq 300); do
    contains -F "RUN sleep 3 && echo $name" "$T/$name.log" && break
    sleep 0.05
  done
  contains -F "RUN sleep 3 && echo $name" "$T/$name.log" || { cat "$T/$name.log" >&2; fail "$name: the RUN never started"; }
  sleep 0.5
  eval "$rewrite"
  RACE_RC=0
  wait "$pid" || RACE_RC=$?
  if grep -A1 -F "RUN sleep 3 && echo $name" "$T/$name.log" | contains CACHED; then fail "$name: the RUN was cached: no race"; fi
  if [[ $RACE_RC -ne 0 ]]; then
    assert_file_contains "$T/$name.log" "build context changed during the build: $file" "$name: the failed build's output"
    log "$name: the build failed naming the changed file"
  else
    log "$name: the build succeeded"
  fi
}

# ---- COPY of a single file ----
echo original >"$ctx/f"
race copy 'COPY f /f' f 'echo "changed, and longer" >"$ctx/f"'
if [[ $RACE_RC -eq 0 ]]; then
  assert_eq "$(cat "$T/copy.local/f")" "changed, and longer" "COPY: the image's /f after a successful build"
fi
echo original >"$ctx/f"
ocib_ok copy-again build --progress=plain -o type=local,dest="$T/copy-again" "$ctx"
assert_eq "$(cat "$T/copy-again/f")" original "COPY: /f of a rebuild with the original content"
# And the new content gets its own result, too.
echo "changed, and longer" >"$ctx/f"
ocib_ok copy-new build --progress=plain -o type=local,dest="$T/copy-new" "$ctx"
assert_eq "$(cat "$T/copy-new/f")" "changed, and longer" "COPY: /f of a build with the new content"

# ---- COPY of a directory: a file inside it changes, another appears ----
mkdir -p "$ctx/d"
echo one >"$ctx/d/one"
race dir 'COPY d /d' d/one 'echo "one, rewritten" >"$ctx/d/one"'
if [[ $RACE_RC -eq 0 ]]; then
  assert_eq "$(cat "$T/dir.local/d/one")" "one, rewritten" "COPY dir: /d/one after a successful build"
fi
echo one >"$ctx/d/one"
ocib_ok dir-again build --progress=plain -o type=local,dest="$T/dir-again" "$ctx"
assert_eq "$(cat "$T/dir-again/d/one")" one "COPY dir: /d/one of a rebuild with the original content"
race dir-add 'COPY d /d' d/two 'echo two >"$ctx/d/two"'
if [[ $RACE_RC -eq 0 ]]; then
  [[ -e $T/dir-add.local/d/two ]] || fail "COPY dir: a successful build lacks d/two"
fi
rm -f "$ctx/d/two"
ocib_ok dir-add-again build --progress=plain -o type=local,dest="$T/dir-add-again" "$ctx"
[[ ! -e $T/dir-add-again/d/two ]] || fail "COPY dir: a rebuild without d/two was served a result holding it"

# ---- ADD of a local tar archive (unpacked) ----
mkdir -p "$T/tar1" "$T/tar2"
echo "from the first archive" >"$T/tar1/member"
echo "from the second archive!" >"$T/tar2/member"
tar -C "$T/tar1" -cf "$T/a1.tar" member
tar -C "$T/tar2" -cf "$T/a2.tar" member
cp "$T/a1.tar" "$ctx/a.tar"
race add 'ADD a.tar /a/' a.tar 'cp "$T/a2.tar" "$ctx/a.tar.new" && mv "$ctx/a.tar.new" "$ctx/a.tar"'
if [[ $RACE_RC -eq 0 ]]; then
  assert_eq "$(cat "$T/add.local/a/member")" "from the second archive!" "ADD: /a/member after a successful build"
fi
cp "$T/a1.tar" "$ctx/a.tar"
ocib_ok add-again build --progress=plain -o type=local,dest="$T/add-again" "$ctx"
assert_eq "$(cat "$T/add-again/a/member")" "from the first archive" "ADD: /a/member of a rebuild with the original archive"

ocib_ok check store check
