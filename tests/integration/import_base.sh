#!/usr/bin/env bash
# A base image that is not a stage: a rootfs tar (busybox + /etc/passwd with a user) is
# imported with `ocib import`, then `FROM` it builds a RUN as a named USER. Checked as root and
# as the unprivileged ocib-test user (subordinate ids): the base layer keeps its owners, the
# RUN's file is owned by 1000:1000 in the layer, the second build re-unpacks nothing, and the
# image validates and unpacks with the real tools.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo umoci oci-image-tool
ensure_test_user

rootfs="$T/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/home/app"
cp /bin/busybox "$rootfs/bin/busybox"
for c in sh ls cat id echo mkdir stat; do ln -s busybox "$rootfs/bin/$c"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/app"
tar --numeric-owner -C "$rootfs" -czf "$T/rootfs.tgz" .
chmod 644 "$T/rootfs.tgz"

ctx="$T/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM base:1
USER app
WORKDIR /home/app
RUN id -u > uid && id -g > gid && stat -c '%u:%g' /home/app > homeowner
CMD ["cat", "/home/app/uid"]
DF
chmod -R a+rX "$ctx"

check_image() { # TAR
  local lay="$T/lay-$RANDOM"
  oci_extract "$1" "$lay"
  oci_validate "$lay" "$(oci_ref "$lay")"
  local list
  list=$(oci_layer_list "$lay" -1)
  grep -q 'home/app/uid' <<<"$list" || fail "the RUN layer lacks home/app/uid: $list"
  local m d p
  m=$(oci_manifest "$lay")
  d=$(jq -r '.layers[-1].digest' "$m")
  p=$(oci_blob "$lay" "$d")
  tar -tvzf "$p" --numeric-owner | grep 'home/app/uid' | contains ' 1000/1000 ' ||
    fail "home/app/uid is not owned by 1000/1000 in the layer: $(tar -tvzf "$p" --numeric-owner)"
  d=$(jq -r '.layers[0].digest' "$m")
  p=$(oci_blob "$lay" "$d")
  tar -tvzf "$p" --numeric-owner | grep -E 'home/app/?$' | contains ' 1000/1000 ' ||
    fail "base layer lost the owner of home/app"
  [[ $(jq -r '.config.User' "$(oci_config "$lay")") == app ]] || fail "config User is not app"
}

# As root.
export OCIB_ROOT="$T/root-store"
ocib_ok import import "$T/rootfs.tgz" base:1
ocib_ok images images
grep -q '^base:1 ' "$T/images.out" || fail "ocib images does not list base:1: $(cat "$T/images.out")"
ocib_ok b1 build -t app:1 -o type=oci,dest="$T/root.tar" --metadata-file "$T/m1.json" "$ctx"
check_image "$T/root.tar"
ocib_ok b2 build -t app:1 -o type=oci,dest="$T/root2.tar" --metadata-file "$T/m2.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/m2.json") == 0 ]] ||
  fail "second build re-ran steps: $(jq -c '.["ocib.vertices"]' "$T/m2.json")"
cmp -s "$T/root.tar" "$T/root2.tar" || fail "cached rebuild produced different bytes"

# As the unprivileged user.
user_area "$IT_USER"
ocib_ok uimport import "$T/rootfs.tgz" base:1
ocib_ok ub1 build -t app:1 -o type=oci,dest="$T/u/app.tar" "$ctx"
check_image "$T/u/app.tar"
# Inside the user namespace the base's /home/app really belongs to 1000 when subordinate ids
# are mapped: the RUN printed it into the image.
oci_extract "$T/u/app.tar" "$T/u/lay"
chown -R "$IT_USER:" "$T/u/lay"
as_user "$IT_USER" umoci unpack --rootless --image "$T/u/lay:$(oci_ref "$T/u/lay")" "$T/u/bundle" >/dev/null ||
  fail "umoci unpack --rootless failed"
assert_eq "$(cat "$T/u/bundle/rootfs/home/app/uid")" 1000 "uid of USER app in RUN"
if grep -q "^$IT_USER:" /etc/subuid; then
  assert_eq "$(cat "$T/u/bundle/rootfs/home/app/homeowner")" "1000:1000" "owner of /home/app seen in RUN"
fi

# A missing base image is a clear error naming the Dockerfile line.
printf 'FROM nosuch:9\nRUN true\n' >"$ctx/Dockerfile.missing"
if ocib_run missing build -f "$ctx/Dockerfile.missing" -o type=oci,dest="$T/x.tar" "$ctx"; then
  fail "a build FROM a missing image succeeded"
fi
grep -q 'Dockerfile.missing:1' "$T/missing.err" || fail "error does not name the line: $(cat "$T/missing.err")"
