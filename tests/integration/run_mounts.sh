#!/usr/bin/env bash
# RUN --mount: a cache mount persists between builds and never lands in a layer; a secret
# (file and env form) reaches the step but no blob, snapshot, cache entry or output; tmpfs and
# context bind mounts; a #! heredoc runs as its own executable. As root and rootless.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd umoci
ensure_test_user

ctx="$T/ctx"
make_ctx "$ctx"
mkdir -p "$ctx/src"
echo "print me" >"$ctx/src/file.txt"
secret_value="OCIB-SECRET-$RANDOM$RANDOM-VALUE"
printf '%s' "$secret_value" >"$T/secret.txt"
chmod 644 "$T/secret.txt"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /count
RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /secretlen
RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo ${#TOK} > /envlen'
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/y && ls /scratch > /tmpfslist
RUN --mount=type=bind,source=src,target=/src cat /src/file.txt > /bound
RUN <<EOF
#!/bin/sh
echo "shebang $0" > /shebang
EOF
DOCKERFILE
chmod -R a+rX "$ctx"

check() { # NAME TAR STORE EXPECTED_COUNT
  local lay="$T/lay-$1" b="$T/b-$1"
  oci_extract "$2" "$lay"
  umoci_unpack "$lay" "$(oci_ref "$lay")" "$b"
  local r="$b/rootfs"
  assert_eq "$(cat "$r/count" | tr -d ' ')" "$4" "cache mount line count ($1)"
  assert_eq "$(cat "$r/secretlen" | tr -d ' ')" "${#secret_value}" "secret file length ($1)"
  assert_eq "$(cat "$r/envlen")" "${#secret_value}" "secret env length ($1)"
  assert_eq "$(cat "$r/tmpfslist")" y "tmpfs mount ($1)"
  assert_eq "$(cat "$r/bound")" "print me" "bind mount of the context ($1)"
  assert_eq "$(cat "$r/shebang")" "shebang /dev/pipes/EOF" "#! heredoc ($1)"
  for d in run cache scratch src dev proc; do
    [[ ! -e $r/$d ]] || fail "mountpoint /$d leaked into the image ($1)"
  done
  # The secret is nowhere: not in the output, the store's blobs (decompressed), snapshots,
  # cache entries or metadata.
  if grep -rqa -- "$secret_value" "$3" "$2" "$lay"; then fail "secret found in the store or output ($1)"; fi
  local blob
  for blob in "$3"/blobs/sha256/*; do
    if { zcat "$blob" 2>/dev/null || cat "$blob"; } | contains -a -- "$secret_value"; then
      fail "secret found inside blob $blob ($1)"
    fi
  done
}

export OCIB_ROOT="$T/store"
ocib_ok b1 build --secret id=tok,src="$T/secret.txt" -t m:1 -o type=oci,dest="$T/m1.tar" "$ctx"
check root1 "$T/m1.tar" "$OCIB_ROOT" 1
# The cache mount keeps its content across builds (the step re-runs with --no-cache).
ocib_ok b2 build --no-cache --secret id=tok,src="$T/secret.txt" -t m:1 -o type=oci,dest="$T/m2.tar" "$ctx"
check root2 "$T/m2.tar" "$OCIB_ROOT" 2
# A missing required secret is a clear error.
printf 'FROM scratch\nRUN --mount=type=secret,id=nope,required echo hi\n' >"$ctx/Dockerfile.req"
if ocib_run req build -f "$ctx/Dockerfile.req" -o type=oci,dest="$T/req.tar" "$ctx"; then fail "missing required secret accepted"; fi
grep -q 'secret nope: not found' "$T/req.err" || fail "unclear error: $(cat "$T/req.err")"

user_area "$IT_USER"
cp "$T/secret.txt" "$T/u/secret.txt"
chown "$IT_USER:" "$T/u/secret.txt"
ocib_ok u1 build --secret id=tok,src="$T/u/secret.txt" -t m:1 -o type=oci,dest="$T/u/m.tar" "$ctx"
check user "$T/u/m.tar" "$OCIB_ROOT" 1

# uid=/gid= on secret and cache mounts (BuildKit: the secret file and a new cache directory get
# that owner), as root and as the unprivileged user; read back from inside the step.
owners() { # NAME DEST
  cat >"$ctx/Dockerfile.owner" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /res"]
RUN --mount=type=secret,id=tok,uid=1234,gid=567,mode=0440 --mount=type=cache,id=owned,target=/cache,uid=1001,gid=1002 ["/bin/busybox", "sh", "-c", "/bin/busybox stat -c %u:%g:%a /run/secrets/tok > /res/secret; /bin/busybox stat -c %u:%g /cache > /res/cache"]
DF
  chmod a+r "$ctx/Dockerfile.owner"
  ocib_ok "$1" build --secret id=tok,src="$3" -f "$ctx/Dockerfile.owner" -o type=local,dest="$2" "$ctx"
  assert_eq "$(cat "$2/res/secret")" "1234:567:440" "secret uid/gid/mode in the step ($1)"
  assert_eq "$(cat "$2/res/cache")" "1001:1002" "new cache directory's owner in the step ($1)"
}
owners own-user "$T/u/own" "$T/u/secret.txt"
OCIB_AS=()
export OCIB_ROOT="$T/store"
owners own-root "$T/own" "$T/secret.txt"
