#!/usr/bin/env bash
# A real Debian image: a bookworm minbase rootfs made with mmdebstrap is imported with
# `ocib import`, then `RUN apt-get update --error-on=any && apt-get install -y
# --no-install-recommends hello` is built without --network flags (the default: the step's own
# network namespace through slirp4netns, DNS through its resolver 10.0.2.3, checked in the
# step), as root and as the unprivileged ocib-test user (subordinate ids: apt drops privileges
# to _apt, which needs a uid other than 0 inside the step).
# Checks: the apt RUN's layer records /usr/bin/hello as 0/0 and /var/lib/apt/lists/partial as
# owned by _apt's uid from the image's /etc/passwd (subordinate ids map back to image ids),
# and the image runs `hello` under runc.
#
# The rootfs tarball is cached in /var/cache/ocib-test/ (one per day) so that repeated runs
# reuse it; needs the Debian archive (the mirror of /etc/apt/sources*), skipped without it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "mmdebstrap, runc and setpriv need it"
need_cmd umoci runc
ensure_test_user
if ! grep -q "^$IT_USER:" /etc/subuid || ! grep -q "^$IT_USER:" /etc/subgid; then
  skip "$IT_USER has no subordinate id range"
fi
need_cmd newuidmap newgidmap
command -v slirp4netns >/dev/null 2>&1 || skip "slirp4netns missing (apt-get install slirp4netns)"

# ---- the Debian rootfs ----------------------------------------------------------------------

# The mirror apt on this machine uses (deb822 "URIs:" or one-line "deb URI suite ...").
mirror=$(
  {
    awk '/^URIs:/ { print $2 }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
  } | grep -E '/debian/?$' | head -n 1
) || true
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
log "mirror $mirror"

cache_dir=/var/cache/ocib-test
base_tar="$cache_dir/debian-bookworm-minbase-$(date -u +%Y%m%d).tar"
if [[ ! -s $base_tar ]]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap \
      >"$T/apt-mmdebstrap.log" 2>&1 || {
      tail -n 20 "$T/apt-mmdebstrap.log" >&2
      skip "mmdebstrap is missing and cannot be installed (apt-get install mmdebstrap)"
    }
  fi
  # Reachability first: a missing archive is a skip, a failing mmdebstrap is a failure.
  command -v curl >/dev/null 2>&1 || need_cmd wget
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 30 -o /dev/null "$mirror/dists/bookworm/Release" 2>"$T/reach.err" ||
      skip "Debian archive $mirror unreachable: $(cat "$T/reach.err")"
  else
    wget -q -T 30 -O /dev/null "$mirror/dists/bookworm/Release" 2>"$T/reach.err" ||
      skip "Debian archive $mirror unreachable: $(cat "$T/reach.err")"
  fi
  mkdir -p "$cache_dir"
  find "$cache_dir" -maxdepth 1 -name 'debian-bookworm-minbase-*.tar' -mtime +2 -delete 2>/dev/null || true
  log "mmdebstrap --variant=minbase bookworm (cached as $base_tar)"
  SECONDS=0
  mmdebstrap --variant=minbase --format=tar bookworm "$T/base.tar.partial" "$mirror" \
    >"$T/mmdebstrap.log" 2>&1 || {
    tail -n 40 "$T/mmdebstrap.log" >&2
    fail "mmdebstrap --variant=minbase bookworm failed"
  }
  mv "$T/base.tar.partial" "$base_tar.$$"
  mv "$base_tar.$$" "$base_tar"
  log "mmdebstrap took ${SECONDS}s"
else
  log "reusing $base_tar"
fi
chmod 644 "$base_tar"
# The test user reads it from a directory it can traverse.
cp "$base_tar" "$T/debian.tar"
chmod 644 "$T/debian.tar"

apt_uid=$(tar -xOf "$T/debian.tar" ./etc/passwd | awk -F: '$1 == "_apt" { print $3 }')
[[ $apt_uid =~ ^[0-9]+$ && $apt_uid -ne 0 ]] || fail "no _apt user in the rootfs's /etc/passwd"
log "_apt is uid $apt_uid"

ctx="$T/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM debian:bookworm-min
ENV DEBIAN_FRONTEND=noninteractive
RUN grep -qx 'nameserver 10.0.2.3' /etc/resolv.conf \
 && apt-get update --error-on=any && apt-get install -y --no-install-recommends hello
CMD ["hello"]
DF
chmod -R a+rX "$ctx"

# ---- checks ---------------------------------------------------------------------------------

# layer_tv LAYOUT INDEX: `tar -tv --numeric-owner` of layer INDEX.
layer_tv() {
  local m mt d p
  m=$(oci_manifest "$1")
  mt=$(jq -r ".layers[$2].mediaType" "$m")
  d=$(jq -r ".layers[$2].digest" "$m")
  [[ $d != null ]] || fail "image in $1 has no layer $2"
  p=$(oci_blob "$1" "$d")
  case $mt in
    *tar+gzip) tar -tvzf "$p" --numeric-owner ;;
    *tar+zstd) tar --zstd -tvf "$p" --numeric-owner ;;
    *tar) tar -tvf "$p" --numeric-owner ;;
    *) fail "unknown layer media type $mt" ;;
  esac
}

# check_image TAR WHO: layer owners, config, and `hello` under runc.
check_image() {
  local tarball=$1 who=$2
  local lay="$T/lay-$who"
  oci_extract "$tarball" "$lay"
  local ref m n
  ref=$(oci_ref "$lay")
  m=$(oci_manifest "$lay")
  n=$(jq '.layers | length' "$m")
  [[ $n -ge 2 ]] || fail "$who: image has $n layers, expected the base plus the apt RUN"
  [[ $(jq -c '.config.Cmd' "$(oci_config "$lay")") == '["hello"]' ]] ||
    fail "$who: config Cmd is $(jq -c '.config.Cmd' "$(oci_config "$lay")")"

  # The apt RUN is the last layer.
  layer_tv "$lay" -1 >"$T/run-layer-$who.tv"
  local line
  line=$(grep -E ' (\./)?usr/bin/hello$' "$T/run-layer-$who.tv") ||
    fail "$who: the apt RUN layer has no usr/bin/hello ($(wc -l <"$T/run-layer-$who.tv") entries)"
  [[ $line == -* ]] || fail "$who: usr/bin/hello is not a regular file in the layer: $line"
  grep -qE '^\S+ 0/0 ' <<<"$line" || fail "$who: usr/bin/hello is not owned by 0/0 in the layer: $line"
  line=$(grep -E ' (\./)?var/lib/apt/lists/partial/?$' "$T/run-layer-$who.tv") || {
    grep -E 'var/lib/apt' "$T/run-layer-$who.tv" | head -n 20 >&2 || true
    fail "$who: the apt RUN layer does not record var/lib/apt/lists/partial"
  }
  grep -qE "^\S+ $apt_uid/" <<<"$line" ||
    fail "$who: var/lib/apt/lists/partial is not owned by _apt (uid $apt_uid) in the layer: $line"
  # Nothing in the layer may carry an id outside the image's range (an unmapped host id).
  local bad
  bad=$(awk '{ split($2, o, "/"); if (o[1] + 0 > 65535 || o[2] + 0 > 65535) print }' \
    "$T/run-layer-$who.tv" | head -n 5)
  [[ -z $bad ]] || fail "$who: the apt RUN layer has entries with unmapped ids: $bad"
  # apt's package lists are there (the update ran in the step, not in the base).
  grep -qE 'var/lib/apt/lists/.*_InRelease$' "$T/run-layer-$who.tv" ||
    fail "$who: the apt RUN layer has no InRelease file under var/lib/apt/lists"

  local bundle="$T/bundle-$who"
  umoci_unpack "$lay" "$ref" "$bundle"
  [[ $(stat -c %u "$bundle/rootfs/usr/bin/hello") == 0 ]] || fail "$who: unpacked usr/bin/hello not owned by 0"
  runc_run "$bundle" "apt-$who-$$" "$T/hello-$who.out"
  assert_file_contains "$T/hello-$who.out" "Hello, world!" "$who: output of hello"
}

# ---- as root --------------------------------------------------------------------------------

export OCIB_ROOT="$T/root-store"
SECONDS=0
ocib_ok import import "$T/debian.tar" debian:bookworm-min
log "root import took ${SECONDS}s"
SECONDS=0
ocib_ok b1 build --progress=plain -t hello:root -o type=oci,dest="$T/root.tar" "$ctx"
log "root build took ${SECONDS}s"
if contains 'slirp4netns' "$T/b1.err"; then show_err b1; fail "root build warned about the network stack"; fi
check_image "$T/root.tar" root

# The SBOM of the Debian-based image lists every package dpkg knows as installed, with its
# version (compared with dpkg-query on the image's own status file).
ocib_ok sbom build --progress=plain -t hello:root --sbom=true -o type=oci,dest="$T/sbom.tar" "$ctx"
oci_extract "$T/sbom.tar" "$T/sbom-lay"
sidx=$(jq -r '.manifests[0].digest' "$T/sbom-lay/index.json")
satt=$(jq -r '.manifests[] | select(.annotations."vnd.docker.reference.type" == "attestation-manifest") | .digest' "$T/sbom-lay/blobs/sha256/${sidx#sha256:}")
[[ -n $satt ]] || fail "the --sbom image has no attestation manifest"
slayer=$(jq -r '.layers[] | select(.annotations."in-toto.io/predicate-type" == "https://spdx.dev/Document") | .digest' "$T/sbom-lay/blobs/sha256/${satt#sha256:}")
# The dpkg packages (the scanner also reads Go binaries, npm and Python packages: a minbase
# image has none, and any it lists are shown).
sdoc="$T/sbom-lay/blobs/sha256/${slayer#sha256:}"
jq -r '.predicate.packages[] | select(.externalRefs[0].referenceLocator | startswith("pkg:deb/")) | .name + " " + .versionInfo' "$sdoc" | sort >"$T/sbom-pkgs"
others=$(jq -r '.predicate.packages[] | .externalRefs[0].referenceLocator | select(startswith("pkg:deb/") | not)' "$sdoc")
[[ -z $others ]] || log "the SBOM's other packages: $(echo $others)"
log "SBOM scan: $(grep -o 'sbom: [0-9]* packages.*' "$T/sbom.err" | head -n 1)"
# The image's dpkg status: the last layer that has one (the apt RUN's).
simg=$(jq -r '.manifests[] | select(.platform.os == "linux") | .digest' "$T/sbom-lay/blobs/sha256/${sidx#sha256:}")
: >"$T/status"
for l in $(jq -r '.layers[].digest' "$T/sbom-lay/blobs/sha256/${simg#sha256:}"); do
  tar -xOf "$T/sbom-lay/blobs/sha256/${l#sha256:}" var/lib/dpkg/status >"$T/status.new" 2>/dev/null && [[ -s $T/status.new ]] && cp "$T/status.new" "$T/status"
done
mkdir -p "$T/admindir"
cp "$T/status" "$T/admindir/status"
dpkg-query --admindir="$T/admindir" -W -f='${db:Status-Status} ${Package} ${Version}\n' | awk '$1 == "installed" {print $2, $3}' | sort >"$T/dpkg-pkgs"
[[ $(wc -l <"$T/dpkg-pkgs") -gt 50 ]] || fail "the image's dpkg database lists too few packages ($(wc -l <"$T/dpkg-pkgs"))"
diff "$T/dpkg-pkgs" "$T/sbom-pkgs" >"$T/sbom.diff" || fail "the SBOM differs from dpkg -l: $(head -5 "$T/sbom.diff")"
contains -x 'hello .*' "$T/sbom-pkgs" || fail "the SBOM lacks the package the build installed (hello)"
log "SBOM lists the $(wc -l <"$T/sbom-pkgs") installed packages"

# ---- as the unprivileged user with its subordinate range -------------------------------------

user_area "$IT_USER"
ocib_ok uinfo info
log "ocib info as $IT_USER: $(tr '\n' ' ' <"$T/uinfo.out")"
SECONDS=0
ocib_ok uimport import "$T/debian.tar" debian:bookworm-min
log "rootless import took ${SECONDS}s"
SECONDS=0
# Machines (containers) that keep /dev/net/tun 0600 get Debian's udev default 0666 for the
# build (network_default.sh covers the warned fallback), restored afterwards.
tun_mode=$(stat -c %a /dev/net/tun 2>/dev/null || echo "")
[[ -z $tun_mode ]] || as_user "$IT_USER" sh -c ': <>/dev/net/tun' 2>/dev/null || chmod 0666 /dev/net/tun
rc=0
ocib_run ub1 build --progress=plain -t hello:user -o type=oci,dest="$T/u/user.tar" "$ctx" || rc=$?
[[ -z $tun_mode ]] || chmod "$tun_mode" /dev/net/tun
[[ $rc -eq 0 ]] || { tail -n 60 "$T/ub1.err" >&2; fail "rootless build exited with status $rc"; }
log "rootless build took ${SECONDS}s"
if contains 'slirp4netns' "$T/ub1.err"; then show_err ub1; fail "rootless build warned about the network stack"; fi
check_image "$T/u/user.tar" user

# The rootless image also unpacks rootless (umoci --rootless as the user).
chown -R "$IT_USER:" "$T/lay-user"
as_user "$IT_USER" umoci unpack --rootless --image "$T/lay-user:$(oci_ref "$T/lay-user")" "$T/u/rbundle" \
  >"$T/umoci-rootless.log" 2>&1 || {
  cat "$T/umoci-rootless.log" >&2
  fail "umoci unpack --rootless of the rootless image failed"
}
[[ -f $T/u/rbundle/rootfs/usr/bin/hello ]] || fail "rootless unpack lacks usr/bin/hello"
