#!/usr/bin/env bash
# Registry round trip against Debian's docker-registry on 127.0.0.1: ocib build pushes a
# multi-stage image (-o type=image,push=true); skopeo reads it back; a second push uploads
# nothing; a push to another repository mounts instead of uploading; a build FROM an image in
# the registry pulls it, runs on it, and the next build does not download it again; an
# unknown registry host without --insecure-registry fails clearly (TLS is the default).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
# Push mechanics of plain images: no default provenance attestation here (it_attestations
# covers them).
export BUILDX_NO_DEFAULT_ATTESTATIONS=1
need_cmd skopeo python3
[[ -x /usr/bin/docker-registry ]] || skip "docker-registry not installed (apt-get install docker-registry)"

start_registry "$T/registry"
reg=$REG regpid=$REG_PID

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
FROM base AS b1
RUN echo one > /one
FROM base
COPY --from=b1 /one /one
CMD ["/bin/cat", "/one"]
DOCKERFILE
export OCIB_ROOT="$T/store"

# Plain HTTP must be asked for: without --insecure-registry the push fails with a hint.
if ocib_run tlsfail build -o "type=image,name=$reg/test/app:1,push=true" "$ctx"; then
  fail "push over plain HTTP worked without --insecure-registry"
fi
grep -qi "insecure" "$T/tlsfail.err" || fail "no hint about --insecure-registry: $(cat "$T/tlsfail.err")"

ocib_ok push1 build --insecure-registry "$reg" -o "type=image,name=$reg/test/app:1,push=true" \
  --metadata-file "$T/m1.json" "$ctx"
digest=$(jq -r '.["containerimage.digest"]' "$T/m1.json")
skopeo inspect --tls-verify=false "docker://$reg/test/app:1" >"$T/inspect.json" || fail "skopeo cannot read the pushed image"
assert_eq "$(jq -r .Digest "$T/inspect.json")" "$digest" "pushed manifest digest"
skopeo copy -q --src-tls-verify=false "docker://$reg/test/app:1" "oci:$T/back:x" || fail "skopeo copy back failed"
oci_validate "$T/back" x
grep -q 'pushed .*(3 uploaded\|pushed .*uploaded' "$T/push1.err" || fail "no push summary: $(tail -5 "$T/push1.err")"
# Transfers report bytes: each uploaded blob ends with a "size / size" line.
contains -E '^pushing sha256:[0-9a-f]{12} ([0-9.]+[kMG]?B) / \1 [0-9.]+s$' "$T/push1.err" ||
  fail "no byte progress for the push: $(grep -i pushing "$T/push1.err" | head -5)"

# Second push, buildx style (--push with two -t): everything is there already; both tags land.
ocib_ok push2 build --insecure-registry "$reg" --push -t "$reg/test/app:1" -t "$reg/test/app:1.0" \
  --metadata-file "$T/m2.json" "$ctx"
grep -q '(0 uploaded' "$T/push2.err" || fail "second push uploaded blobs: $(grep pushed "$T/push2.err")"
assert_eq "$(skopeo inspect --tls-verify=false "docker://$reg/test/app:1.0" | jq -r .Digest)" "$digest" "--push of the second -t"
assert_eq "$(jq -r '.["image.name"]' "$T/m2.json")" "$reg/test/app:1,$reg/test/app:1.0" "metadata image.name (all names)"
rc=0; ocib_run pushnoname build --push "$ctx" || rc=$?
assert_eq "$rc" 2 "--push without a name"
# Another repository on the same registry: blobs are mounted, not uploaded.
ocib_ok push3 push --insecure-registry "$reg" "$reg/test/app:1" "$reg/other/app:1"
grep -q ': 0 uploaded' "$T/push3.err" || fail "push to a second repository uploaded blobs: $(cat "$T/push3.err")"
grep -q '[1-9][0-9]* mounted' "$T/push3.err" || fail "push to a second repository mounted nothing: $(cat "$T/push3.err")"

# A base image from the registry (pushed with skopeo from an archive ocib made).
ocib_ok bbase build -t bb:1 -o type=oci,dest="$T/bb.tar" -f "$ctx/Dockerfile" --target base "$ctx"
skopeo copy -q --dest-tls-verify=false "oci-archive:$T/bb.tar" "docker://$reg/library/busybox:latest" ||
  fail "skopeo could not push the base"
cat >"$ctx/Dockerfile.from" <<DOCKERFILE
FROM $reg/library/busybox:latest
RUN echo "on a pulled base" > /msg
DOCKERFILE
# Planning pulls only the manifest and config: layers are fetched by the unpack steps (side
# by side), so --print=plan downloads none.
OCIB_ROOT="$T/store-plan" ocib_ok plan0 build --insecure-registry "$reg" -f "$ctx/Dockerfile.from" --print=plan "$ctx"
nblobs=$(find "$T/store-plan/blobs/sha256" -type f | wc -l)
assert_eq "$nblobs" 2 "blobs in the store after --print=plan FROM a registry image (manifest and config)"
export OCIB_ROOT="$T/store2"
ocib_ok from1 build --insecure-registry "$reg" -f "$ctx/Dockerfile.from" -t fromreg:1 \
  -o type=oci,dest="$T/from.tar" "$ctx"
grep -q "pulling $reg/library/busybox" "$T/from1.err" || fail "the base was not pulled: $(head "$T/from1.err")"
contains -E '^pulling sha256:[0-9a-f]{12} ([0-9.]+[kMG]?B) / \1 [0-9.]+s$' "$T/from1.err" ||
  fail "no byte progress for the pull: $(grep -i pulling "$T/from1.err" | head -5)"
oci_extract "$T/from.tar" "$T/froml"
oci_validate "$T/froml" "$(oci_ref "$T/froml")"
umoci_unpack "$T/froml" "$(oci_ref "$T/froml")" "$T/fromb"
assert_eq "$(cat "$T/fromb/rootfs/msg")" "on a pulled base" "RUN on a pulled base"
[[ -x $T/fromb/rootfs/bin/busybox ]] || fail "the pulled base's files are missing"
ocib_ok from2 build --insecure-registry "$reg" -f "$ctx/Dockerfile.from" -t fromreg:1 \
  -o type=oci,dest="$T/from2.tar" "$ctx"
! grep -q "pulling" "$T/from2.err" || fail "the second build pulled again: $(grep pulling "$T/from2.err")"
# A single-layer base is unpacked while it downloads (the bytes go through a pipe into the
# unpacking sandbox): the same files as unpacking the downloaded blob (OCIB_STREAM_PULL=0). A
# blob the registry serves altered fails the build on its size or digest, and nothing is kept.
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$ctx/Dockerfile.one"
ocib_ok one build -f "$ctx/Dockerfile.one" -o type=oci,dest="$T/one.tar" "$ctx"
skopeo copy -q --dest-tls-verify=false "oci-archive:$T/one.tar" "docker://$reg/library/one:1" ||
  fail "skopeo could not push the one-layer image"
printf 'FROM %s/library/one:1\n' "$reg" >"$ctx/Dockerfile.fromone"
OCIB_ROOT="$T/store-s1" OCIB_DEBUG=1 ocib_ok fromone1 build --insecure-registry "$reg" \
  -f "$ctx/Dockerfile.fromone" -o type=local,dest="$T/one-s" "$ctx"
grep -q "unpacked while downloading" "$T/fromone1.err" || fail "the one layer was not unpacked while downloading"
OCIB_ROOT="$T/store-s0" OCIB_STREAM_PULL=0 OCIB_DEBUG=1 ocib_ok fromone0 build --insecure-registry "$reg" \
  -f "$ctx/Dockerfile.fromone" -o type=local,dest="$T/one-f" "$ctx"
! grep -q "unpacked while downloading" "$T/fromone0.err" || fail "OCIB_STREAM_PULL=0 streamed"
diff -r "$T/one-s" "$T/one-f" >/dev/null || fail "the streamed unpack differs from the unpack of the blob"
cmp -s "$T/one-s/bin/busybox" "$ctx/busybox" || fail "the streamed layer's busybox differs"
onelayer=$(jq -r '.manifests[0].digest' <(tar -xOf "$T/one.tar" index.json))
onelayer=$(tar -xOf "$T/one.tar" "blobs/sha256/${onelayer#sha256:}" | jq -r '.layers[0].digest')
data=$(find "$T/registry" -path "*/blobs/sha256/*/${onelayer#sha256:}/data")
[[ -f $data ]] || fail "the one layer's blob is not in the registry storage"
cp "$data" "$T/one-layer.orig"
# The same tar compressed again: it unpacks to the right diff_id, so only the download's check
# (the blob's size and digest) can refuse it, and the snapshot must wait for that verdict.
gzip -dc "$T/one-layer.orig" | gzip -9 -n >"$T/one-layer.other"
! cmp -s "$T/one-layer.orig" "$T/one-layer.other" || fail "gzip -9 wrote the same bytes"
cp "$T/one-layer.other" "$data"
rc=0; OCIB_ROOT="$T/store-s2" ocib_run fromone2 build --insecure-registry "$reg" -f "$ctx/Dockerfile.fromone" \
  -o type=local,dest="$T/one-t" "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "a tampered single-layer base was accepted"
grep -qE "blob $onelayer: (size mismatch|digest mismatch|more data than)" "$T/fromone2.err" ||
  fail "the tampered blob's error does not name its size or digest: $(tail -3 "$T/fromone2.err")"
[[ -z $(ls "$T/store-s2/s" 2>/dev/null) ]] || fail "a snapshot of the tampered layer was kept: $(ls "$T/store-s2/s")"
cp "$T/one-layer.orig" "$data"
OCIB_ROOT="$T/store-s2" ocib_ok fromone3 build --insecure-registry "$reg" -f "$ctx/Dockerfile.fromone" \
  -o type=local,dest="$T/one-u" "$ctx"
cmp -s "$T/one-u/bin/busybox" "$ctx/busybox" || fail "the build after the tampered one did not get the layer"

# tag, inspect, rmi.
ocib_ok tag tag fromreg:1 "$reg/test/retagged:2"
ocib_ok inspect inspect "$reg/test/retagged:2"
jq -e '.Manifest.layers | length >= 2' "$T/inspect.out" >/dev/null || fail "inspect shows no layers: $(head -c 300 "$T/inspect.out")"
assert_eq "$(jq -r '.Config.config.Cmd // empty | length' "$T/inspect.out")" "" "no Cmd in this image"
ocib_ok rmi rmi "$reg/test/retagged:2"
if ocib_run inspect2 inspect "$reg/test/retagged:2"; then fail "rmi left the tag"; fi

# A second registry with htpasswd auth: login checks the password and stores it in the Docker
# config; pushing then uses it; logout removes it.
if command -v htpasswd >/dev/null; then
  mkdir -p "$T/areg"
  htpasswd -Bbn alice s3cret >"$T/areg/htpasswd"
  start_registry "$T/areg" "$T/areg/htpasswd"
  areg=$REG apid=$REG_PID
  export DOCKER_CONFIG="$T/dockercfg"
  if printf 'wrong' | "$OCIB" login -u alice --password-stdin --insecure-registry "$areg" "$areg" >"$T/login1.out" 2>"$T/login1.err"; then
    fail "login with a wrong password succeeded"
  fi
  grep -qi "auth" "$T/login1.err" || { fail "unclear login error: $(cat "$T/login1.err")"; }
  ! grep -q wrong "$T/login1.err" || { fail "the password appears in the error"; }
  printf 's3cret' | "$OCIB" login -u alice --password-stdin --insecure-registry "$areg" "$areg" >"$T/login2.out" 2>"$T/login2.err" ||
    { fail "login failed: $(cat "$T/login2.err")"; }
  jq -e --arg h "$areg" '.auths[$h].auth' "$DOCKER_CONFIG/config.json" >/dev/null || { fail "no stored credentials"; }
  ocib_run apush push --insecure-registry "$areg" fromreg:1 "$areg/team/app:1" || { fail "push with stored credentials failed: $(cat "$T/apush.err")"; }
  ocib_ok logout logout "$areg"
  if ocib_run apush2 push --insecure-registry "$areg" fromreg:1 "$areg/team/app:2"; then
    fail "push without credentials succeeded"
  fi
  stop_pid "$apid"
  unset DOCKER_CONFIG
fi

# A mirror serves images of another registry name (here one that does not resolve).
printf 'FROM mirrored.invalid/library/busybox:latest\nRUN echo via mirror > /m\n' >"$ctx/Dockerfile.mirror"
export OCIB_ROOT="$T/store-mirror"
ocib_ok mirror build --registry-mirror "mirrored.invalid=$reg" --insecure-registry "$reg" \
  -f "$ctx/Dockerfile.mirror" -o type=oci,dest="$T/mirror.tar" "$ctx"

# ocib pull by itself, into a fresh store, then --pull=never works offline.
export OCIB_ROOT="$T/store3"
ocib_ok pull pull --insecure-registry "$reg" "$reg/library/busybox:latest"
stop_pid "$regpid"
ocib_ok offline build --pull=never -f "$ctx/Dockerfile.from" -o type=oci,dest="$T/off.tar" "$ctx"
