#!/usr/bin/env bash
# The seed build as an unprivileged user (ocib-test, with /etc/subuid ranges). A RUN step
# records its uid_map and /proc/1/exe into the image; the image is then unpacked with
# umoci --rootless as the same user and validated with oci-image-tool.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo umoci oci-image-tool
ensure_test_user
user_area "$IT_USER"
uid=$(id -u "$IT_USER")

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
RUN sleep 1 && echo one > /one

FROM base AS b2
RUN sleep 1 && echo two > /two

FROM base AS final
COPY --from=b1 /one /one
COPY --from=b2 /two /two
RUN mkdir -p /probe && cat /proc/self/uid_map > /probe/uid_map && cat /proc/self/gid_map > /probe/gid_map && readlink /proc/1/exe > /probe/exe && grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /probe/status && id -u > /probe/id
ENV GREETING=hello
WORKDIR /app
USER 1000:1000
CMD ["/bin/sh","-c","cat /one /two"]
DF
chmod -R a+rX "$ctx"

ocib_ok build build -t app:1 -j 4 -o type=oci,dest="$T/u/app.tar" \
  --metadata-file "$T/u/meta.json" --progress=plain "$ctx"
[[ -f $T/u/app.tar ]] || fail "no output archive $T/u/app.tar"
[[ $(stat -c %U "$T/u/app.tar") == "$IT_USER" ]] || fail "output archive is not owned by $IT_USER"
[[ -d $OCIB_ROOT ]] || fail "store $OCIB_ROOT was not created (OCIB_ROOT not honoured?)"

skopeo inspect "oci-archive:$T/u/app.tar" >/dev/null 2>"$T/skopeo.err" ||
  { cat "$T/skopeo.err" >&2; fail "skopeo inspect oci-archive:$T/u/app.tar failed"; }

# Unpack as the unprivileged user too: what a rootless consumer of the image does.
as_user "$IT_USER" mkdir "$T/u/layout"
as_user "$IT_USER" tar -xf "$T/u/app.tar" -C "$T/u/layout" || fail "cannot extract the archive as $IT_USER"
ref=$(oci_ref "$T/u/layout")
oci_validate "$T/u/layout" "$ref"
as_user "$IT_USER" umoci unpack --rootless --image "$T/u/layout:$ref" "$T/u/bundle" >"$T/umoci.log" 2>&1 ||
  { cat "$T/umoci.log" >&2; fail "umoci unpack --rootless as $IT_USER failed"; }
rootfs="$T/u/bundle/rootfs"
for f in one two probe/uid_map probe/exe probe/status probe/id; do
  [[ -f $rootfs/$f ]] || fail "/$f missing from the unpacked image"
done

first=$(head -n1 "$rootfs/probe/uid_map" | awk '{print $1, $2, $3}')
assert_eq "$first" "0 $uid 1" "first line of the RUN step's /proc/self/uid_map"
log "uid_map in RUN: $(tr -s ' \n' ' ' <"$rootfs/probe/uid_map")"
# ocib-test has a subordinate range and newuidmap is on PATH: ids 1.. map to that range.
sub_start=$(awk -F: -v u="$IT_USER" '$1 == u {print $2; exit}' /etc/subuid)
second=$(sed -n 2p "$rootfs/probe/uid_map" | awk '{print $1, $2}')
assert_eq "$second" "1 $sub_start" "second line of uid_map (subordinate range via newuidmap)"
assert_eq "$(cat "$rootfs/probe/exe")" "/bin/busybox" "readlink /proc/1/exe in RUN (shell must be pid 1)"
assert_eq "$(cat "$rootfs/probe/id")" "0" "uid inside RUN"
assert_file_contains "$rootfs/probe/status" "$(printf 'Seccomp:\t2')" "RUN's /proc/self/status"
assert_file_contains "$rootfs/probe/status" "$(printf 'NoNewPrivs:\t1')" "RUN's /proc/self/status"
assert_eq "$(cat "$rootfs/one")$(cat "$rootfs/two")" "onetwo" "files copied from the branches"

# A filesystem tar keeps the image's owners in its headers, as BuildKit's tar exporter does
# (the staging copy belongs to subordinate ids, a 0700 directory of another id included: it is
# packed in the user namespace); a local directory as a user gets the user's own files.
cat >"$ctx/Dockerfile.owners" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /o/private && /bin/busybox echo x > /o/private/f && /bin/busybox chown -R 1234:567 /o && /bin/busybox chmod 700 /o/private"]
DF
chmod a+r "$ctx/Dockerfile.owners"
ocib_ok owners build -f "$ctx/Dockerfile.owners" -o type=tar,dest="$T/u/fs.tar" -o type=local,dest="$T/u/fsdir" "$ctx"
assert_eq "$(tar -tvf "$T/u/fs.tar" | awk '$6 == "o/private/f" {print $2}')" "1234/567" "owner of o/private/f in the rootless type=tar"
assert_eq "$(tar -tvf "$T/u/fs.tar" | awk '$6 == "o/private/" {print $1}')" "drwx------" "mode of o/private/ in the rootless type=tar"
assert_eq "$(stat -c %u "$T/u/fsdir/o/private/f")" "$uid" "owner of a file of the rootless type=local output"
"${OCIB_AS[@]}" "$OCIB" build -q -f "$ctx/Dockerfile.owners" -o type=tar,dest=- "$ctx" 2>"$T/u/stdout.err" >"$T/u/stdout.tar" ||
  { cat "$T/u/stdout.err" >&2; fail "rootless type=tar,dest=- failed"; }
assert_eq "$(tar -tvf "$T/u/stdout.tar" | awk '$6 == "o/private/f" {print $2}')" "1234/567" "owner in the rootless type=tar on stdout"
