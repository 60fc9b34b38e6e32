#!/usr/bin/env bash
# The chroot rung (OCIB_ISOLATION=chroot; chosen by itself where namespaces are refused, see
# it_ci_container) keeps a step's root apart without any namespace: RUN runs under proot in a
# copy of its snapshots and ocib's own file work resolves paths inside that copy. Checked here,
# as root and as an unprivileged user, against the attacks and semantics that matter:
#  - an image symlink to an absolute host path: WORKDIR, COPY and RUN through it stay in the image;
#  - a secret is readable in the step and lands in no layer; a cache mount persists across builds;
#  - a bind mount of the context can be written by the step without reaching the context;
#  - USER in a step (root: the real id in the layer), the step's exit status, no leftovers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "useradd and setpriv need it"
need_cmd proot tar jq

ctx="$T/ctx"
make_ctx "$ctx"
echo "ctx-file" >"$ctx/f.txt"
echo "victim" >"$ctx/victim"
echo "s3cr3t-value" >"$T/secret"
chmod 644 "$T/secret"
host="$T/hostdir"
mkdir -p "$host"
chmod 777 "$host"
cat >"$ctx/Dockerfile" <<DF
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /tmp && /bin/busybox ln -s $host /app && /bin/busybox ln -s $host/target /link"]
FROM base
WORKDIR /app/sub
COPY f.txt /app/
COPY f.txt /link
RUN ["/bin/busybox", "sh", "-c", "echo run > /app/run.txt"]
RUN --mount=type=secret,id=s ["/bin/busybox", "sh", "-c", "/bin/busybox wc -c < /run/secrets/s > /secret-len"]
RUN --mount=type=cache,target=/cache ["/bin/busybox", "sh", "-c", "/bin/busybox cat /cache/count 2>/dev/null > /cache-before || true; echo x >> /cache/count"]
RUN --mount=type=bind,target=/ctx ["/bin/busybox", "sh", "-c", "/bin/busybox rm -f /ctx/victim && echo changed > /ctx/f.txt && /bin/busybox ls /ctx > /ctx-listing"]
USER 1000:1000
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox id -u > /tmp/uid && /bin/busybox touch /tmp/by-user"]
DF
chmod -R a+rX "$ctx"

# layers IMAGE.tar DIR: prints "uid:gid path" of every layer entry; the layers are extracted in
# order into DIR/fs (no whiteouts in this image) and all their bytes are in DIR/all-content.
layers() {
  local tarball=$1 d=$2
  mkdir -p "$d/fs"
  tar -xf "$tarball" -C "$d"
  local m
  m=$(jq -r '.manifests[0].digest' "$d/index.json")
  for l in $(jq -r '.layers[].digest' "$d/blobs/sha256/${m#sha256:}"); do
    tar --numeric-owner -tvf "$d/blobs/sha256/${l#sha256:}" | awk '{split($2, o, "/"); print o[1] ":" o[2], $NF}'
    tar -xOf "$d/blobs/sha256/${l#sha256:}" >>"$d/all-content" 2>/dev/null || true
    tar -xf "$d/blobs/sha256/${l#sha256:}" -C "$d/fs"
  done
}

for mode in root rootless; do
  rm -rf "${host:?}"/*
  if [[ $mode == rootless ]]; then
    ensure_test_user
    user_area "$IT_USER"
    run=(as_user "$IT_USER" env OCIB_ISOLATION=chroot "$OCIB")
    out="$T/u/out-$mode"
    cp "$T/secret" "$T/u/secret"
    chown "$IT_USER" "$T/u/secret"
    secret="$T/u/secret"
  else
    export OCIB_ROOT="$T/store"
    run=(env OCIB_ISOLATION=chroot "$OCIB")
    out="$T/out-$mode"
    secret="$T/secret"
  fi
  for round in 1 2; do
    rc=0
    "${run[@]}" build --progress=plain --no-cache --secret id=s,src="$secret" -o type=oci,dest="$out-$round.tar" "$ctx" \
      >"$T/$mode-$round.out" 2>"$T/$mode-$round.err" || rc=$?
    [[ $rc -eq 0 ]] || { tail -20 "$T/$mode-$round.err" >&2; fail "$mode: build $round failed under the chroot isolation"; }
  done
  contains -F 'isolation: chroot' "$T/$mode-1.err" && fail "$mode: a forced rung is announced as a step down"
  [[ -z $(ls -A "$host") ]] || fail "$mode: the build wrote through an image symlink onto the host: $(ls -la "$host")"
  assert_eq "$(cat "$ctx/victim")" "victim" "$mode: the context file a bind-mounting step deleted"
  assert_eq "$(cat "$ctx/f.txt")" "ctx-file" "$mode: the context file a bind-mounting step overwrote"
  listing=$(layers "$out-2.tar" "$T/$mode-img")
  printf '%s\n' "$listing" >"$T/$mode.layers"
  d="$T/$mode-img"
  contains -E " $host/sub/?\$| ${host#/}/sub/?\$" <<<"$listing" || fail "$mode: WORKDIR through the image symlink is not in the image: $(grep -F "${host#/}" <<<"$listing" || true)"
  contains -E " ${host#/}/f.txt\$" <<<"$listing" || fail "$mode: COPY through the image symlink is not in the image"
  contains -E " ${host#/}/target\$" <<<"$listing" || fail "$mode: COPY onto a symlink to a host path is not in the image"
  contains -E " ${host#/}/run.txt\$" <<<"$listing" || fail "$mode: RUN through the image symlink is not in the image"
  if contains -E ' run/secrets' <<<"$listing"; then fail "$mode: the secret's mountpoint is in a layer"; fi
  if contains -F 's3cr3t-value' "$d/all-content"; then fail "$mode: the secret's value is in a layer"; fi
  contains -E ' secret-len$' <<<"$listing" || fail "$mode: the secret step left no output"
  # The second build saw the cache the first one wrote.
  assert_eq "$(cat "$d/fs/cache-before")" "x" "$mode: the cache mount's content from the first build"
  assert_eq "$(cat "$d/fs/${host#/}/run.txt")" "run" "$mode: the RUN's file written through the image symlink"
  assert_eq "$(cat "$d/fs/${host#/}/target")" "ctx-file" "$mode: COPY onto the image symlink"
  assert_eq "$(cat "$d/fs/secret-len")" "13" "$mode: the secret's size as the step read it"
  contains -x 'Dockerfile' "$d/fs/ctx-listing" || fail "$mode: the bind mount did not show the context"
  assert_eq "$(cat "$d/fs/tmp/uid")" "1000" "$mode: USER 1000's id in the step"
  if [[ $mode == root ]]; then
    contains -x '1000:1000 tmp/by-user' <<<"$listing" || fail "root: USER 1000's file is not 1000's in the layer: $(grep by-user <<<"$listing")"
  else
    if contains -v -E '^0:0 ' <<<"$listing"; then fail "rootless: a layer entry is not root's: $(grep -v -E '^0:0 ' <<<"$listing")"; fi
  fi
  contains -E ' tmp/uid$' <<<"$listing" || fail "$mode: the USER step left no output"

  # A failing step's exit status, and nothing left behind.
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "exit 3"]\n' >"$ctx/Dockerfile.fail"
  rc=0
  "${run[@]}" build -f "$ctx/Dockerfile.fail" "$ctx" >"$T/$mode-fail.out" 2>"$T/$mode-fail.err" || rc=$?
  [[ $rc -ne 0 ]] || fail "$mode: a step exiting 3 built"
  contains -F 'exit code: 3' "$T/$mode-fail.err" || fail "$mode: the failure does not give the step's exit code: $(tail -3 "$T/$mode-fail.err")"
  left=$(find "$OCIB_ROOT/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | grep -v -E '/(probe|locks)' || true)
  [[ -z $left ]] || fail "$mode: the store's tmp holds leftovers: $left"
  log "$mode: ok"
done
log PASS
