#!/usr/bin/env bash
# Multi-platform builds. `--platform linux/amd64,linux/arm64` builds each platform and writes an
# OCI image index listing both manifests with their platforms (checked with jq on the layout
# and with skopeo picking each architecture out of the archive); the arm64 RUN really runs
# under qemu-user through binfmt_misc (`uname -m` says aarch64). FROM --platform=$BUILDPLATFORM
# with TARGETARCH builds per-target content natively, before any emulator is registered. A
# platform with no registered emulator fails with an error that says how to register one, while
# a build for it without RUN needs none. A later build FROM the multi-platform tag picks the
# manifest of the platform it builds for; pushed to docker-registry, the index reads back with
# skopeo and a fresh store pulls the manifest of the platform it builds for.
#
# Machine facts: needs root (binfmt_misc), qemu-user-static and an arm64 static busybox, which
# is downloaded once from the Debian archive (a private apt lists dir: the system's dpkg
# architectures are left alone) and cached in $OCIB_IT_CACHE (default /var/cache/ocib-it).
# If no F-flag handler for aarch64 is registered, the scenario registers one from
# /usr/lib/binfmt.d/qemu-aarch64.conf under its own name and removes it at exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "binfmt_misc registration needs it"
need_cmd skopeo dpkg-deb apt-get python3 curl sha256sum
[[ $(host_arch) == amd64 ]] || skip "the scenario builds arm64 images on an amd64 host"
[[ -x /usr/bin/qemu-aarch64-static ]] || skip "qemu-user-static is not installed (run scripts/install-deps.sh)"

BINFMT=/proc/sys/fs/binfmt_misc
MY_HANDLER=ocib-it-aarch64
mounted_binfmt=0
registered=0
mp_cleanup() {
  if [[ $registered == 1 && -e $BINFMT/$MY_HANDLER ]]; then echo -1 >"$BINFMT/$MY_HANDLER" || true; fi
  if [[ $mounted_binfmt == 1 ]]; then umount "$BINFMT" 2>/dev/null || true; fi
}
# shellcheck disable=SC2154 # rc is assigned inside the trap
trap 'rc=$?; mp_cleanup; (exit $rc); it_cleanup' EXIT

# ---- an arm64 static busybox (cached) --------------------------------------------------------
cache=${OCIB_IT_CACHE:-/var/cache/ocib-it}
bb_arm64="$cache/busybox-static-arm64/bin/busybox"
if [[ ! -x $bb_arm64 ]]; then
  log "fetching busybox-static:arm64 from the Debian archive (cached in $cache)"
  apt_dir="$T/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/dl"
  chmod -R 777 "$apt_dir"
  apt_opts=(-q -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" update >"$T/apt-update.log" 2>&1 || {
    tail -5 "$T/apt-update.log" >&2
    skip "cannot reach the Debian archive for busybox-static:arm64"
  }
  (cd "$apt_dir/dl" && apt-get "${apt_opts[@]}" download busybox-static:arm64) >"$T/apt-dl.log" 2>&1 || {
    tail -5 "$T/apt-dl.log" >&2
    fail "apt-get download busybox-static:arm64 failed"
  }
  dpkg-deb -x "$apt_dir"/dl/busybox-static_*_arm64.deb "$apt_dir/x"
  mkdir -p "$(dirname "$bb_arm64")"
  install -m 755 "$apt_dir/x/bin/busybox" "$bb_arm64.tmp"
  mv "$bb_arm64.tmp" "$bb_arm64"
fi
# e_machine 0xb7 (aarch64) at offset 18 of the ELF header.
[[ $(od -An -tx1 -j18 -N2 "$bb_arm64" | tr -d ' ') == b700 ]] || fail "$bb_arm64 is not an aarch64 executable"

ctx="$T/ctx"
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox-amd64"
cp "$bb_arm64" "$ctx/busybox-arm64"
chmod -R a+rX "$ctx"

oci_digest_of() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }

# Which entry of binfmt_misc runs aarch64 executables with the F flag ("" = none).
aarch64_handler() {
  local f
  for f in "$BINFMT"/*; do
    [[ -f $f && $(basename "$f") != status && $(basename "$f") != register ]] || continue
    grep -qx enabled "$f" 2>/dev/null || continue
    grep -q '^magic 7f454c460201010000000000000000000200b700' "$f" || continue
    grep -q '^flags: .*F' "$f" || continue
    basename "$f"
    return 0
  done
  return 0
}

# ---- 1. FROM --platform=$BUILDPLATFORM + TARGETARCH: no emulation ----------------------------
# Runs before we register anything: an emulator is not needed for it.
mkdir -p "$T/hostbb/bin"
cp /bin/busybox "$T/hostbb/bin/busybox"
ln -s busybox "$T/hostbb/bin/sh"
tar -C "$T/hostbb" -cf "$T/hostbb.tar" .
ocib_ok import import "$T/hostbb.tar" hostbb:1
cat >"$ctx/Dockerfile.cross" <<'EOF'
FROM --platform=$BUILDPLATFORM hostbb:1 AS build
ARG TARGETARCH
ARG TARGETPLATFORM
ARG BUILDARCH
RUN echo "$TARGETARCH $TARGETPLATFORM $BUILDARCH $(/bin/busybox uname -m)" > /t
FROM scratch
COPY --from=build /t /t
EOF
ocib_ok cross build --progress=plain -f "$ctx/Dockerfile.cross" --platform linux/amd64,linux/arm64 \
  -o type=local,dest="$T/cross" -o type=oci-layout,dest="$T/cross-layout" "$ctx"
assert_eq "$(cat "$T/cross/linux_amd64/t")" "amd64 linux/amd64 amd64 x86_64" "cross build, amd64 output"
assert_eq "$(cat "$T/cross/linux_arm64/t")" "arm64 linux/arm64 amd64 x86_64" "cross build, arm64 output (built natively)"
[[ ! -e $T/cross/t ]] || fail "type=local with two platforms wrote the rootfs at the top level"
cross_idx=$(oci_blob "$T/cross-layout" "$(jq -r '.manifests[0].digest' "$T/cross-layout/index.json")")
assert_eq "$(jq -r '[.manifests[].platform.architecture] | join(",")' "$cross_idx")" "amd64,arm64" "cross build index"

# ---- binfmt_misc: qemu-aarch64 with the F flag --------------------------------------------------
if [[ ! -e $BINFMT/status ]]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT" || skip "cannot mount binfmt_misc"
  mounted_binfmt=1
fi
if [[ -z $(aarch64_handler) ]]; then
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [[ -f $conf ]] || skip "$conf missing (qemu-user-static)"
  # :name:type:offset:magic:mask:interpreter:flags, registered under our own name with F.
  line=$(grep -v '^#' "$conf" | head -1)
  IFS=: read -r _ _ type offset magic mask interp flags <<<"$line"
  [[ $flags == *F* ]] || flags="${flags}F"
  log "registering $MY_HANDLER ($interp, flags $flags)"
  printf ':%s:%s:%s:%s:%s:%s:%s' "$MY_HANDLER" "$type" "$offset" "$magic" "$mask" "$interp" "$flags" \
    >"$BINFMT/register" || skip "cannot register a binfmt_misc handler"
  registered=1
fi
[[ -n $(aarch64_handler) ]] || fail "no aarch64 binfmt_misc handler after registering one"

# ---- 2. RUN under emulation; the image index -----------------------------------------------------
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /arch && echo $TARGETARCH > /targetarch"]
CMD ["/bin/busybox", "cat", "/arch"]
EOF
export SOURCE_DATE_EPOCH=1700000000
ocib_ok mp build --progress=plain --platform linux/amd64,linux/arm64 -t mp:1 \
  -o type=oci,dest="$T/mp.tar" -o type=oci-layout,dest="$T/mp-layout" -o type=local,dest="$T/mpfs" \
  --metadata-file "$T/mp-meta.json" --iidfile "$T/mp.iid" "$ctx"
assert_file_contains "$T/mp.err" "[linux/arm64 stage-0 4/5] RUN" "progress names the platform"
assert_eq "$(cat "$T/mpfs/linux_amd64/arch")" "x86_64" "amd64 RUN"
assert_eq "$(cat "$T/mpfs/linux_arm64/arch")" "aarch64" "arm64 RUN ran under qemu"
assert_eq "$(cat "$T/mpfs/linux_arm64/targetarch")" "arm64" "TARGETARCH in the arm64 RUN"

L="$T/mp-extracted"
oci_extract "$T/mp.tar" "$L"
assert_eq "$(jq -r '.manifests | length' "$L/index.json")" 1 "index.json entries"
assert_eq "$(jq -r '.manifests[0].mediaType' "$L/index.json")" "application/vnd.oci.image.index.v1+json" \
  "index.json points at an image index"
assert_eq "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$L/index.json")" 1 "ref.name"
index_digest=$(jq -r '.manifests[0].digest' "$L/index.json")
idx=$(oci_blob "$L" "$index_digest")
assert_eq "$(jq -r '.mediaType' "$idx")" "application/vnd.oci.image.index.v1+json" "index mediaType"
assert_eq "$(jq -r '[.manifests[] | .platform.os + "/" + .platform.architecture] | join(",")' "$idx")" \
  "linux/amd64,linux/arm64" "index platforms"
for a in amd64 arm64; do
  m=$(oci_blob "$L" "$(jq -r --arg a "$a" '.manifests[] | select(.platform.architecture == $a) | .digest' "$idx")")
  cfg=$(oci_blob "$L" "$(jq -r '.config.digest' "$m")")
  assert_eq "$(jq -r '.architecture + "/" + .os' "$cfg")" "$a/linux" "config of the $a image"
  layer=$(oci_blob "$L" "$(jq -r '.layers[-1].digest' "$m")")
  want=$([[ $a == arm64 ]] && echo aarch64 || echo x86_64)
  assert_eq "$(tar -xzOf "$layer" arch)" "$want" "/arch in the $a RUN layer"
  first=$(oci_blob "$L" "$(jq -r '.layers[0].digest' "$m")")
  cmp -s <(tar -xzOf "$first" bin/busybox) "$ctx/busybox-$a" || fail "the $a image holds the wrong busybox"
done
# The same content in the layout directory, and skopeo reads the index and picks each platform.
assert_eq "$(jq -r '.manifests[0].digest' "$T/mp-layout/index.json")" "$index_digest" "oci-layout index digest"
skopeo inspect --raw "oci-archive:$T/mp.tar" >"$T/skopeo-raw.json" || fail "skopeo cannot read the archive"
assert_eq "$(jq -r '.manifests | length' "$T/skopeo-raw.json")" 2 "skopeo inspect --raw: manifests"
for a in amd64 arm64; do
  skopeo --override-arch "$a" --override-os linux inspect "oci-archive:$T/mp.tar" >"$T/skopeo-$a.json" ||
    fail "skopeo inspect --override-arch $a failed"
  assert_eq "$(jq -r .Architecture "$T/skopeo-$a.json")" "$a" "skopeo picks the $a image"
done
assert_eq "$(cat "$T/mp.iid")" "$index_digest" "--iidfile holds the index digest"
assert_eq "$(jq -r '."containerimage.digest"' "$T/mp-meta.json")" "$index_digest" "metadata digest"
assert_eq "$(jq -r '."ocib.platforms"["linux/arm64"]."containerimage.digest"' "$T/mp-meta.json")" \
  "$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$idx")" "metadata: arm64 manifest"
assert_eq "$(jq -r '[."ocib.vertices"[].stage] | unique | join(",")' "$T/mp-meta.json")" \
  "linux/amd64 stage-0,linux/arm64 stage-0" "metadata: both platforms' steps"

# A rebuild is all cached and gives the same index.
ocib_ok mp2 build --progress=plain --platform linux/amd64,linux/arm64 -o type=oci-layout,dest="$T/mp-layout2" \
  -o type=tar,dest="$T/mpfs.tar" "$ctx"
assert_eq "$(tar -xOf "$T/mpfs.tar" ./linux_arm64/arch 2>/dev/null || tar -xOf "$T/mpfs.tar" linux_arm64/arch)" aarch64 \
  "type=tar: one directory per platform"
assert_eq "$(jq -r '.manifests[0].digest' "$T/mp-layout2/index.json")" "$index_digest" "cached rebuild: same index"
assert_eq "$(grep -c '^#[0-9]* CACHED$' "$T/mp2.err")" 4 "cached rebuild: steps answered by the cache"
if grep -q '^#[0-9]* DONE' "$T/mp2.err"; then fail "the cached rebuild ran a step"; fi

# The store tag names the index: a later build FROM it takes the manifest of its platform.
cat >"$ctx/Dockerfile.from" <<'EOF'
FROM mp:1
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /arch > /base-arch"]
EOF
ocib_ok from build --progress=plain -f "$ctx/Dockerfile.from" --platform linux/arm64 -o type=local,dest="$T/from-arm" "$ctx"
assert_eq "$(cat "$T/from-arm/base-arch")" "aarch64" "FROM a multi-platform tag, built for arm64"
ocib_ok from2 build --progress=plain -f "$ctx/Dockerfile.from" -o type=local,dest="$T/from-host" "$ctx"
assert_eq "$(cat "$T/from-host/base-arch")" "x86_64" "FROM a multi-platform tag, built for the host"

# ocib import --platform: an arm64 rootfs tar becomes an arm64 image, a base for linux/arm64
# builds only (a host build FROM it says which platform it has).
mkdir -p "$T/armbb/bin" && cp "$bb_arm64" "$T/armbb/bin/busybox" && tar -C "$T/armbb" -cf "$T/armbb.tar" .
ocib_ok imparm import --platform linux/arm64 "$T/armbb.tar" armbb:1
printf 'FROM armbb:1\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /m"]\n' >"$ctx/Dockerfile.armbase"
ocib_ok armbase build --progress=plain -f "$ctx/Dockerfile.armbase" --platform linux/arm64 -o type=local,dest="$T/armbase" "$ctx"
assert_eq "$(cat "$T/armbase/m")" "aarch64" "RUN on an imported arm64 base"
if ocib_run armhost build -f "$ctx/Dockerfile.armbase" "$ctx"; then fail "an arm64 import served a host build"; fi
assert_file_contains "$T/armhost.err" "linux/arm64" "host build FROM an arm64-only import"

# Pushed to a registry: each manifest, then the index under the tag; a build in a fresh store
# FROM it pulls the manifest of the platform it builds for.
if [[ -x /usr/bin/docker-registry ]]; then
  start_registry "$T/registry"
  reg=$REG
  ocib_ok push build --platform linux/amd64,linux/arm64 --insecure-registry "$reg" \
    --metadata-file "$T/push-meta.json" -o "type=registry,name=$reg/mp/app:1" "$ctx"
  skopeo inspect --raw --tls-verify=false "docker://$reg/mp/app:1" >"$T/reg-raw.json" ||
    fail "skopeo cannot read the pushed index"
  assert_eq "$(jq -r '[.manifests[] | select(.annotations."vnd.docker.reference.type" != "attestation-manifest") | .platform.architecture] | join(",")' "$T/reg-raw.json")" "amd64,arm64" \
    "pushed index platforms"
  # As buildx: each platform's image has its default (mode=min) provenance beside it.
  assert_eq "$(jq -r '[.manifests[] | select(.annotations."vnd.docker.reference.type" == "attestation-manifest") | .platform.os] | join(",")' "$T/reg-raw.json")" "unknown,unknown" \
    "attestation manifests in the pushed index"
  assert_eq "$(oci_digest_of "$T/reg-raw.json")" "$(jq -r '."containerimage.digest"' "$T/push-meta.json")" "pushed index digest"
  # The platforms' image manifests are the ones the unattested index lists.
  assert_eq "$(jq -r '[.manifests[] | select(.platform.os == "linux") | .digest] | join(",")' "$T/reg-raw.json")" \
    "$(jq -r '[.manifests[].digest] | join(",")' "$idx")" "the pushed platforms' manifests"
  skopeo --override-arch arm64 inspect --tls-verify=false "docker://$reg/mp/app:1" >"$T/reg-arm64.json" ||
    fail "skopeo cannot read the pushed arm64 image"
  assert_eq "$(jq -r .Architecture "$T/reg-arm64.json")" arm64 "pushed arm64 image"
  printf 'FROM %s/mp/app:1\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /arch > /base-arch"]\n' "$reg" \
    >"$ctx/Dockerfile.reg"
  OCIB_ROOT="$T/store2" ocib_ok regarm build --insecure-registry "$reg" -f "$ctx/Dockerfile.reg" \
    --platform linux/arm64 -o type=local,dest="$T/reg-arm" "$ctx"
  assert_eq "$(cat "$T/reg-arm/base-arch")" aarch64 "FROM a pushed index, built for arm64"
  OCIB_ROOT="$T/store2" ocib_ok reghost build --insecure-registry "$reg" -f "$ctx/Dockerfile.reg" \
    -o type=local,dest="$T/reg-host" "$ctx"
  assert_eq "$(cat "$T/reg-host/base-arch")" x86_64 "FROM a pushed index, built for the host"
  stop_pid "$REG_PID"
else
  log "docker-registry not installed; skipping the push part"
fi

# docker archives hold one image.
if ocib_run dock build --platform linux/amd64,linux/arm64 -o type=docker,dest="$T/d.tar" "$ctx"; then
  fail "type=docker accepted two platforms"
fi
assert_file_contains "$T/dock.err" "type=docker holds one image" "docker output error"

# ---- 3. no emulator registered: a clear error; no RUN: no emulator needed -----------------------
other=""
for cand in s390x:s390x riscv64:riscv64 ppc64le:ppc64le mips64le:mips64el; do
  if ! compgen -G "$BINFMT/*${cand#*:}*" >/dev/null; then
    other=${cand%%:*}
    break
  fi
done
if [[ -z $other ]]; then
  log "every candidate architecture has an emulator registered; skipping the unregistered check"
else
  cat >"$ctx/Dockerfile.other" <<'EOF'
FROM scratch
COPY busybox-amd64 /bin/busybox
RUN ["/bin/busybox", "true"]
EOF
  if ocib_run other build -f "$ctx/Dockerfile.other" --platform "linux/$other" -o type=oci,dest="$T/o.tar" "$ctx"; then
    fail "RUN for linux/$other ran without an emulator"
  fi
  assert_file_contains "$T/other.err" "RUN for linux/$other needs emulation" "unregistered emulator error"
  assert_file_contains "$T/other.err" "[stage-0 3/3] RUN" "the error names the step"
  assert_file_contains "$T/other.err" "F (fix-binary) flag" "the error says how to register"
  assert_file_contains "$T/other.err" "apt-get install qemu-user-static" "the error says how to register"
  # Platforms build concurrently: the failure cancels the other one, and the error reported is
  # the cause, not the cancellation.
  printf 'FROM scratch\nCOPY busybox-amd64 /bin/busybox\nRUN ["/bin/busybox", "sleep", "5"]\n' >"$ctx/Dockerfile.both"
  start=$(date +%s)
  if ocib_run both build -f "$ctx/Dockerfile.both" --platform "linux/amd64,linux/$other" "$ctx"; then
    fail "a multi-platform build with an unrunnable platform succeeded"
  fi
  assert_file_contains "$T/both.err" "RUN for linux/$other needs emulation" "multi-platform failure names the cause"
  (( $(date +%s) - start < 5 )) || fail "the amd64 step was not cancelled when linux/$other failed"
  head -2 "$ctx/Dockerfile.other" >"$ctx/Dockerfile.norun"
  ocib_ok norun build -f "$ctx/Dockerfile.norun" --platform "linux/$other" -o type=oci-layout,dest="$T/norun" "$ctx"
  assert_eq "$(jq -r .architecture "$(oci_config "$T/norun")")" "$other" "a COPY-only build for linux/$other"
fi

# A RUN for another OS is refused at its line; a COPY-only image for any OS builds (BuildKit too).
if ocib_run badp build --platform windows/amd64 "$ctx"; then fail "--platform windows/amd64 with RUN accepted"; fi
assert_file_contains "$T/badp.err" "only linux images can be built with RUN" "--platform windows error"
printf 'FROM scratch\nCOPY Dockerfile /Dockerfile\n' >"$ctx/Dockerfile.darwin"
ocib_ok darwin build --platform darwin/amd64 -f "$ctx/Dockerfile.darwin" -o type=oci-layout,dest="$T/darwin" "$ctx"
assert_eq "$(jq -r '.os + "/" + .architecture' "$(oci_config "$T/darwin")")" "darwin/amd64" "a COPY-only darwin/amd64 image"
