#!/usr/bin/env bash
# buildx's multi-runner recipe against the real registry: each "runner" pushes its platform by
# digest (-o type=image,name=REG/APP,push-by-digest=true; the digest in --metadata-file, no
# tag), then `ocib manifest create -t REG/APP:TAG SRC@DIGEST...` merges them into one index
# (a source in another repository of the registry is mounted across), checked with skopeo;
# `ocib manifest inspect` lists the platforms. Usage errors exit 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo
start_registry "$T/reg"

ctx="$T/ctx"
make_ctx "$ctx"
printf 'FROM scratch\nARG TARGETARCH\nCOPY Dockerfile /built-for-$TARGETARCH\n' >"$ctx/Dockerfile"
# Two runners, one platform each (COPY-only: no emulation needed), two repositories.
ocib_ok amd64 build --platform linux/amd64 --insecure-registry "$REG" \
  -o "type=image,name=$REG/team/app,push-by-digest=true,name-canonical=true,push=true" --metadata-file "$T/amd64.json" "$ctx"
ocib_ok arm64 build --platform linux/arm64 --insecure-registry "$REG" \
  -o "type=image,name=$REG/team/staging,push-by-digest=true,push=true" --metadata-file "$T/arm64.json" "$ctx"
d_amd=$(jq -r '.["containerimage.digest"]' "$T/amd64.json")
d_arm=$(jq -r '.["containerimage.digest"]' "$T/arm64.json")
[[ $d_amd == sha256:* && $d_arm == sha256:* && $d_amd != "$d_arm" ]] || fail "digests from the metadata: $d_amd $d_arm"
tags=$(curl -s "http://$REG/v2/team/app/tags/list" | jq -r '.tags // [] | length')
assert_eq "$tags" 0 "tags pushed by push-by-digest"

ocib_ok create manifest create -t "$REG/team/app:1.0" -t "$REG/team/app:latest" --insecure-registry "$REG" \
  "$REG/team/app@$d_amd" "$REG/team/staging@$d_arm"
idx=$(tail -1 "$T/create.out")
[[ $idx == sha256:* ]] || fail "manifest create printed no digest: $(cat "$T/create.out")"
skopeo inspect --tls-verify=false --raw "docker://$REG/team/app:1.0" >"$T/index.json" || fail "skopeo cannot read the index"
assert_eq "$(jq -r .mediaType "$T/index.json")" "application/vnd.oci.image.index.v1+json" "index media type"
# Each runner pushed an index (its image and, as buildx by default, its provenance attestation):
# the merged index holds both images and both attestation manifests, each still naming its image.
attest_filter='select(.annotations."vnd.docker.reference.type" == "attestation-manifest")'
assert_eq "$(jq -r "[.manifests[] | select(.annotations.\"vnd.docker.reference.type\" != \"attestation-manifest\") | .platform.os + \"/\" + .platform.architecture] | sort | join(\",\")" "$T/index.json")" \
  "linux/amd64,linux/arm64" "index platforms"
images_of() { # REPO DIGEST: the image manifest digests of a pushed index (or the digest itself)
  local raw
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$REG/$1@$2")
  if [[ $(jq -r .mediaType <<<"$raw") == *index* ]]; then
    jq -r '.manifests[] | select(.platform.os == "linux") | .digest' <<<"$raw"
  else
    echo "$2"
  fi
}
assert_eq "$(jq -r '[.manifests[] | select(.platform.os == "linux") | .digest] | sort | join(",")' "$T/index.json")" \
  "$( (images_of team/app "$d_amd"; images_of team/staging "$d_arm") | sort | paste -sd,)" "index entries are the pushed images"
assert_eq "$(jq -r "[.manifests[] | $attest_filter | .annotations.\"vnd.docker.reference.digest\"] | sort | join(\",\")" "$T/index.json")" \
  "$(jq -r '[.manifests[] | select(.platform.os == "linux") | .digest] | sort | join(",")' "$T/index.json")" \
  "the attestation manifests name the merged images"
assert_eq "sha256:$(sha256sum <"$T/index.json" | cut -d' ' -f1)" "$idx" "printed digest is the index's"
# The arm64 image, pushed to team/staging, is now in team/app too (mounted): skopeo reads it
# and its layer there.
arm_img=$(images_of team/staging "$d_arm")
skopeo inspect --tls-verify=false "docker://$REG/team/app@$arm_img" >"$T/arm.json" || fail "arm64 manifest missing from team/app"
assert_eq "$(jq -r .Architecture "$T/arm.json")" arm64 "architecture of the mounted image"
skopeo copy --src-tls-verify=false "docker://$REG/team/app:latest" "oci:$T/copied:x" --all >/dev/null 2>&1 ||
  fail "skopeo cannot copy the whole index (a blob is missing in team/app)"

ocib_ok inspect manifest inspect --insecure-registry "$REG" "$REG/team/app:1.0"
assert_file_contains "$T/inspect.out" "Digest:    $idx"
assert_file_contains "$T/inspect.out" "Platform:  linux/arm64"
assert_file_contains "$T/inspect.out" "Platform:  linux/amd64"
ocib_ok raw manifest inspect --raw --insecure-registry "$REG" "$REG/team/app:1.0"
cmp "$T/raw.out" "$T/index.json" || fail "manifest inspect --raw differs from the registry's bytes"

# Usage errors: exit 2, before any request.
rc=0; ocib_run u1 manifest create "$REG/team/app@$d_amd" || rc=$?
assert_eq "$rc" 2 "manifest create without -t"
rc=0; ocib_run u2 manifest craete -t x y || rc=$?
assert_eq "$rc" 2 "unknown manifest subcommand"
assert_file_contains "$T/u2.err" 'did you mean "create"?'
log "ok"
