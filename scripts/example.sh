#!/usr/bin/env bash
# Build the examples/parallel image with ocib, inspect it with skopeo and, as root, run it
# with umoci + runc.   sudo ./scripts/example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

./scripts/install-deps.sh
./scripts/build.sh

out=${OUT:-/tmp/parallel.tar}
work=$(mktemp -d /tmp/ocib-example.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The context needs a static busybox; it is copied in at run time, never committed.
cp -a examples/parallel "$work/ctx"
cp /bin/busybox "$work/ctx/busybox"

echo "+ ocib build -f examples/parallel/Dockerfile -t parallel:1 -o type=oci,dest=$out --progress=plain examples/parallel"
time "$repo/build/src/cli/ocib" build -f "$work/ctx/Dockerfile" -t parallel:1 \
  -o "type=oci,dest=$out" --progress=plain "$work/ctx"

echo "+ skopeo inspect oci-archive:$out"
skopeo inspect "oci-archive:$out"

if [[ $(id -u) -eq 0 ]]; then
  echo "+ umoci unpack + runc run"
  mkdir "$work/layout"
  tar -xf "$out" -C "$work/layout"
  ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$work/layout/index.json")
  umoci unpack --image "$work/layout:$ref" "$work/bundle" >/dev/null
  jq '.process.terminal = false' "$work/bundle/config.json" >"$work/config.json"
  mv "$work/config.json" "$work/bundle/config.json"
  runc --root "$work/runc" run --bundle "$work/bundle" "ocib-example-$$" </dev/null
fi
