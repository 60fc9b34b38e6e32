#!/usr/bin/env bash
# --build-context NAME=VALUE (buildx): a local directory for COPY --from and RUN --mount
# from=, an image (docker-image://, here a stored one) and an OCI layout (oci-layout://DIR:TAG)
# for FROM and COPY --from; a named context replaces a stage of the same name; a changed file
# in a named directory re-runs only what reads it; bad values are clear errors.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo

ctx="$T/ctx"
make_ctx "$ctx"
mkdir -p "$T/docs" "$T/assets/sub"
echo "from the docs context" >"$T/docs/readme.txt"
echo "asset" >"$T/assets/sub/a.txt"

# A base image in the store and the same image as an OCI layout directory.
cat >"$ctx/Dockerfile.base" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo base-image > /origin"]
DF
ocib_ok base build -t ctxbase:1 -f "$ctx/Dockerfile.base" -o type=oci-layout,dest="$T/layout" "$ctx"

cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo stage > /origin"]

FROM tools
COPY --from=docs readme.txt /readme.txt
RUN --mount=type=bind,from=assets,target=/assets ["/bin/busybox", "cp", "/assets/sub/a.txt", "/a.txt"]
COPY --from=tools /origin /origin
DF

# 1. The directory contexts; without --build-context, "docs" is neither stage nor image.
rc=0
ocib_run nodocs build "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "COPY --from=docs worked with no such context"
ocib_ok b1 build -t bc:1 --build-context docs="$T/docs" --build-context assets="$T/assets" \
  --label org.example.ctx=yes -o type=oci,dest="$T/b1.tar" --metadata-file "$T/m1.json" "$ctx"
oci_extract "$T/b1.tar" "$T/l1"
umoci_unpack "$T/l1" "$(oci_ref "$T/l1")" "$T/u1"
assert_eq "$(cat "$T/u1/rootfs/readme.txt")" "from the docs context" "file copied from a named directory"
assert_eq "$(cat "$T/u1/rootfs/a.txt")" "asset" "file read through RUN --mount from= a named directory"
assert_eq "$(cat "$T/u1/rootfs/origin")" "stage" "COPY --from=tools without an override"
assert_eq "$(jq -r '.config.Labels["org.example.ctx"]' "$(oci_config "$T/l1")")" "yes" "--label"

# 2. A changed file in a named directory re-runs the COPY that reads it, not the RUN mount.
echo "docs v2" >"$T/docs/readme.txt"
ocib_ok b2 build --build-context docs="$T/docs" --build-context assets="$T/assets" --progress=plain "$ctx"
contains -E 'COPY --from=docs' "$T/b2.err" || fail "no COPY --from=docs step"
grep -A1 -E '^#[0-9]+ \[stage-1 2/4\] COPY --from=docs' "$T/b2.err" | contains 'CACHED' &&
  fail "the COPY from the changed docs context was cached"
# the tools stage did not change
grep -A1 -E '^#[0-9]+ \[tools 3/3\] RUN' "$T/b2.err" | contains 'CACHED' || fail "the tools stage re-ran: $(cat "$T/b2.err")"

# 2b. A named directory's own .dockerignore applies to COPY --from it (BuildKit), and an
# ignored file's change does not invalidate the step.
mkdir -p "$T/ign"
echo kept >"$T/ign/keep.txt" && echo secret >"$T/ign/skip.key" && printf '*.key\n' >"$T/ign/.dockerignore"
printf 'FROM scratch\nCOPY --from=ign . /ign/\n' >"$ctx/Dockerfile.ign"
ocib_ok ign1 build -f "$ctx/Dockerfile.ign" --build-context ign="$T/ign" --progress=plain -o type=local,dest="$T/ign-out" "$ctx"
[[ -f $T/ign-out/ign/keep.txt && ! -e $T/ign-out/ign/skip.key ]] || fail "the named context's .dockerignore was not applied: $(ls -a "$T/ign-out/ign")"
echo changed >"$T/ign/skip.key"
ocib_ok ign2 build -f "$ctx/Dockerfile.ign" --build-context ign="$T/ign" --progress=plain "$ctx"
grep -A1 -E '^#[0-9]+ \[stage-0 2/2\] COPY --from=ign' "$T/ign2.err" | contains 'CACHED' ||
  fail "a change to an ignored file re-ran the COPY: $(cat "$T/ign2.err")"

# 3. Image contexts replace a stage of the same name: tools = the stored image / the layout.
ocib_ok img build -t bc:2 --build-context docs="$T/docs" --build-context assets="$T/assets" \
  --build-context tools=docker-image://ctxbase:1 -o type=oci,dest="$T/img.tar" "$ctx"
oci_extract "$T/img.tar" "$T/li"
umoci_unpack "$T/li" "$(oci_ref "$T/li")" "$T/ui"
assert_eq "$(cat "$T/ui/rootfs/origin")" "base-image" "stage replaced by docker-image:// context"
tag=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "$T/layout/index.json")
sel=${tag:+:$tag}
export OCIB_ROOT="$T/store2"  # a fresh store: the layout's blobs must come from the directory
ocib_ok lay build -t bc:3 --build-context docs="$T/docs" --build-context assets="$T/assets" \
  --build-context "tools=oci-layout://$T/layout$sel" -o type=oci,dest="$T/lay.tar" "$ctx"
oci_extract "$T/lay.tar" "$T/ll"
umoci_unpack "$T/ll" "$(oci_ref "$T/ll")" "$T/ul"
assert_eq "$(cat "$T/ul/rootfs/origin")" "base-image" "stage replaced by oci-layout:// context"

# 4. Errors name the flag and the cause.
rc=0
ocib_run e1 build --build-context docs="$T/nope" "$ctx" || rc=$?
[[ $rc -ne 0 ]] && contains -F -- "--build-context docs=$T/nope: not a directory" "$T/e1.err" ||
  fail "missing directory: $(cat "$T/e1.err")"
rc=0
ocib_run e2 build --build-context docs=https://example.com/x.git "$ctx" || rc=$?
[[ $rc -ne 0 ]] && contains -F "only a local directory" "$T/e2.err" || fail "URL context: $(cat "$T/e2.err")"
rc=0
ocib_run e3 build --build-context "tools=oci-layout://$T/layout:nosuchtag" --build-context docs="$T/docs" \
  --build-context assets="$T/assets" "$ctx" || rc=$?
[[ $rc -ne 0 ]] && contains -F "no image nosuchtag" "$T/e3.err" || fail "unknown layout tag: $(cat "$T/e3.err")"
