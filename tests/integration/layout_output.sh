#!/usr/bin/env bash
# -o type=oci-layout: a directory that oci-image-tool validates and umoci unpacks, and a
# deletion in a RUN step becomes an OCI whiteout (a/.wh.x) in that step's layer.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd umoci oci-image-tool

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN mkdir -p /a && echo x > /a/x && echo y > /a/y

FROM base
RUN rm /a/x
CMD ["/bin/ls","/a"]
DF

ocib_ok build build -t layout:1 -o type=oci-layout,dest="$T/layout" --progress=plain "$ctx"
[[ -f $T/layout/oci-layout ]] || fail "$T/layout/oci-layout missing"
jq -e '.imageLayoutVersion == "1.0.0"' "$T/layout/oci-layout" >/dev/null || fail "bad oci-layout file: $(cat "$T/layout/oci-layout")"
[[ -f $T/layout/index.json ]] || fail "$T/layout/index.json missing"
ref=$(oci_ref "$T/layout")
oci_validate "$T/layout" "$ref"

# Every blob named by the manifest exists and matches its digest and size.
m=$(oci_manifest "$T/layout")
while read -r d size; do
  p=$(oci_blob "$T/layout" "$d")
  assert_eq "sha256:$(sha256sum "$p" | cut -d' ' -f1)" "$d" "digest of blob $p"
  assert_eq "$(stat -c %s "$p")" "$size" "size of blob $d"
done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$m")

# The last layer is the RUN rm step: it must carry the whiteout and nothing of /a/y.
oci_layer_list "$T/layout" -1 >"$T/last-layer.txt"
grep -qE '^(\./)?a/\.wh\.x$' "$T/last-layer.txt" ||
  { cat "$T/last-layer.txt" >&2; fail "layer of 'RUN rm /a/x' has no whiteout a/.wh.x"; }
if grep -qE '^(\./)?a/y$' "$T/last-layer.txt"; then
  fail "layer of 'RUN rm /a/x' contains the unchanged file a/y"
fi

umoci_unpack "$T/layout" "$ref" "$T/bundle"
[[ ! -e $T/bundle/rootfs/a/x ]] || fail "/a/x still present after unpacking (whiteout not applied)"
assert_eq "$(cat "$T/bundle/rootfs/a/y")" "y" "/a/y in the unpacked image"
[[ -L $T/bundle/rootfs/bin/sh ]] || fail "/bin/sh symlink from 'busybox --install -s' missing"
