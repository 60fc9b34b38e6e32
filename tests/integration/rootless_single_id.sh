#!/usr/bin/env bash
# Rootless builds with a single-id user namespace (uid_map is exactly "0 <uid> 1"), which
# ocib falls back to when it cannot use subordinate ids:
#   1. a user with NO /etc/subuid range;
#   2. ocib-test (which has a range) with newuidmap/newgidmap not on PATH.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo umoci oci-image-tool
need_root "useradd and setpriv need it"
need_cmd setpriv useradd unshare

user=ocib-test-nosub
if ! id "$user" >/dev/null 2>&1; then
  # A system account gets no subordinate ids from useradd.
  useradd -r -U -M -d /nonexistent -s /usr/sbin/nologin "$user" || fail "useradd $user failed"
fi
for f in /etc/subuid /etc/subgid; do
  if grep -q "^$user:" "$f" 2>/dev/null; then
    sed -i "/^$user:/d" "$f"
  fi
done
user_area "$user"
uid=$(id -u "$user")

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
RUN echo one > /one

FROM base
COPY --from=b1 /one /one
RUN mkdir /probe && cat /proc/self/uid_map > /probe/uid_map && readlink /proc/1/exe > /probe/exe
CMD ["/bin/cat","/one"]
DF
chmod -R a+rX "$ctx"

ocib_ok build build -t single:1 -o type=oci,dest="$T/u/app.tar" --progress=plain "$ctx"
skopeo inspect "oci-archive:$T/u/app.tar" >/dev/null 2>"$T/skopeo.err" ||
  { cat "$T/skopeo.err" >&2; fail "skopeo inspect oci-archive:$T/u/app.tar failed"; }
oci_extract "$T/u/app.tar" "$T/layout"
ref=$(oci_ref "$T/layout")
oci_validate "$T/layout" "$ref"
umoci_unpack "$T/layout" "$ref" "$T/bundle"
rootfs="$T/bundle/rootfs"
[[ -f $rootfs/probe/uid_map ]] || fail "/probe/uid_map missing from the image"
assert_eq "$(grep -c . "$rootfs/probe/uid_map")" "1" "number of uid_map lines (single-id mapping)"
assert_eq "$(awk '{print $1, $2, $3}' "$rootfs/probe/uid_map")" "0 $uid 1" "uid_map in RUN"
assert_eq "$(cat "$rootfs/probe/exe")" "/bin/busybox" "readlink /proc/1/exe in RUN"
assert_eq "$(cat "$rootfs/one")" "one" "/one copied from b1"

# 2. Subordinate ids exist but newuidmap is not on PATH.
[[ -n $(command -v newuidmap) ]] || skip "newuidmap not installed (uidmap package), variant 2 is moot"
ensure_test_user
uid=$(id -u "$IT_USER")
rm -rf "$T/u"
user_area "$IT_USER"
mkdir "$T/nobin"
chmod 755 "$T/nobin"
IT_PATH="$T/nobin"
ocib_ok build2 build -t single:2 -o type=oci,dest="$T/u/app2.tar" --progress=plain "$ctx"
oci_extract "$T/u/app2.tar" "$T/layout2"
ref=$(oci_ref "$T/layout2")
umoci_unpack "$T/layout2" "$ref" "$T/bundle2"
rootfs="$T/bundle2/rootfs"
[[ -f $rootfs/probe/uid_map ]] || fail "/probe/uid_map missing from the image (variant 2)"
assert_eq "$(grep -c . "$rootfs/probe/uid_map")" "1" "number of uid_map lines without newuidmap on PATH"
assert_eq "$(awk '{print $1, $2, $3}' "$rootfs/probe/uid_map")" "0 $uid 1" "uid_map in RUN (variant 2)"
