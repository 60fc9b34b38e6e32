#!/usr/bin/env bash
# A CI script written for `docker buildx build` (the flags docker/build-push-action passes) runs
# unchanged against a loopback registry with TLS (a self-signed CA in containers' certs.d) and
# htpasswd auth, and the attestations are BuildKit's layout: an image index holding the image
# manifest and an attestation manifest (platform unknown/unknown,
# vnd.docker.reference.type=attestation-manifest, vnd.docker.reference.digest = the image
# manifest), whose in-toto layers are a SLSA provenance and an SPDX SBOM whose subject is the
# pushed image manifest. Also: a plain --push attaches a mode=min provenance (buildx's default),
# --provenance=false and BUILDX_NO_DEFAULT_ATTESTATIONS do not; skopeo copies the image with its
# attestations; an SBOM lists the apk packages of an image's database; bad values exit 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo jq openssl htpasswd curl

make_tls_cert "$T/tls"
mkdir -p "$T/areg"
htpasswd -Bbn ci s3cret >"$T/areg/htpasswd"
start_registry "$T/areg" "$T/areg/htpasswd" "$T/tls"
reg=$REG
# Trust the registry's certificate as a CI job would (containers' certs.d), for ocib and skopeo.
export XDG_CONFIG_HOME="$T/config"
mkdir -p "$XDG_CONFIG_HOME/containers/certs.d/$reg"
cp "$T/tls/server.crt" "$XDG_CONFIG_HOME/containers/certs.d/$reg/ca.crt"
export DOCKER_CONFIG="$T/docker-config" REGISTRY_AUTH_FILE="$T/docker-config/config.json"
mkdir -p "$DOCKER_CONFIG"
printf 's3cret' | "$OCIB" login -u ci --password-stdin "$reg" >"$T/login.out" 2>"$T/login.err" || { cat "$T/login.err" >&2; fail "login to the TLS registry failed"; }
sk=(--cert-dir "$XDG_CONFIG_HOME/containers/certs.d/$reg" --authfile "$REGISTRY_AUTH_FILE")

ctx="$T/ctx"
make_ctx "$ctx"
mkdir -p "$ctx/lib/apk/db"
printf 'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nC:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\n\n' >"$ctx/lib/apk/db/installed"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
ARG VERSION=dev
COPY busybox /bin/busybox
COPY lib /lib
RUN ["/bin/busybox", "sh", "-c", "echo $VERSION > /version"]
DF

# What docker/build-push-action runs (push: true, provenance: mode=max, sbom: true).
rc=0
"$OCIB" build --iidfile "$T/iid" --metadata-file "$T/meta.json" --tag "$reg/ci/app:1" \
  --label org.opencontainers.image.source=https://example.com/app --build-arg VERSION=1.0 \
  --platform linux/amd64 --cache-from "type=registry,ref=$reg/ci/app:buildcache" \
  --cache-to "type=registry,ref=$reg/ci/app:buildcache,mode=max" --push --provenance=mode=max --sbom=true \
  "$ctx" >"$T/gha.out" 2>"$T/gha.err" || rc=$?
[[ $rc -eq 0 ]] || { tail -20 "$T/gha.err" >&2; fail "the build-push-action command line failed"; }

skopeo inspect "${sk[@]}" --raw "docker://$reg/ci/app:1" >"$T/index.json" || fail "skopeo cannot read the pushed index"
assert_eq "$(jq -r .mediaType "$T/index.json")" "application/vnd.oci.image.index.v1+json" "the pushed media type"
pushed=$(jq -r '."containerimage.digest"' "$T/meta.json")
assert_eq "sha256:$(sha256sum <"$T/index.json" | cut -d' ' -f1)" "$pushed" "the metadata's digest is the pushed index"
assert_eq "$(cat "$T/iid")" "$pushed" "--iidfile (an index: its digest, as buildx)"
image=$(jq -r '.manifests[] | select(.platform.os == "linux") | .digest' "$T/index.json")
att=$(jq -r '.manifests[] | select(.annotations."vnd.docker.reference.type" == "attestation-manifest") | .digest' "$T/index.json")
[[ -n $image && -n $att ]] || fail "the index lacks the image or its attestation manifest: $(cat "$T/index.json")"
assert_eq "$(jq -r --arg a "$att" '.manifests[] | select(.digest == $a) | .annotations."vnd.docker.reference.digest"' "$T/index.json")" "$image" "the attestation's reference digest"
assert_eq "$(jq -r --arg a "$att" '.manifests[] | select(.digest == $a) | .platform.os + "/" + .platform.architecture' "$T/index.json")" "unknown/unknown" "the attestation manifest's platform"

# Read the statements back through the registry.
repo="$reg/ci/app"
skopeo copy -q --all --src-cert-dir "$XDG_CONFIG_HOME/containers/certs.d/$reg" --authfile "$REGISTRY_AUTH_FILE" \
  "docker://$repo:1" "oci:$T/copy:1" 2>"$T/copy.err" || fail "skopeo copy --all of the attested image failed: $(cat "$T/copy.err")"
blob() { cat "$T/copy/blobs/sha256/${1#sha256:}"; }
[[ -f $T/copy/blobs/sha256/${att#sha256:} ]] || fail "skopeo's copy lacks the attestation manifest"
blob "$att" >"$T/att.json"
prov=$(jq -r '.layers[] | select(.annotations."in-toto.io/predicate-type" == "https://slsa.dev/provenance/v0.2") | .digest' "$T/att.json")
sbom=$(jq -r '.layers[] | select(.annotations."in-toto.io/predicate-type" == "https://spdx.dev/Document") | .digest' "$T/att.json")
[[ -n $prov && -n $sbom ]] || fail "the attestation manifest lacks a provenance or an SBOM layer: $(cat "$T/att.json")"
assert_eq "$(jq -r '.layers[0].mediaType' "$T/att.json")" "application/vnd.in-toto+json" "the statements' media type"
blob "$prov" >"$T/prov.json"
blob "$sbom" >"$T/sbom.json"
for f in prov sbom; do
  assert_eq "$(jq -r '._type' "$T/$f.json")" "https://in-toto.io/Statement/v0.1" "$f: statement type"
  assert_eq "sha256:$(jq -r '.subject[0].digest.sha256' "$T/$f.json")" "$image" "$f: the subject is the pushed image manifest"
  assert_eq "$(jq -r '.subject[0].name' "$T/$f.json")" "pkg:docker/$reg/ci/app@1?platform=linux%2Famd64" "$f: the subject's name"
done
assert_eq "$(jq -r '.predicate.buildType' "$T/prov.json")" "https://mobyproject.org/buildkit@v1" "provenance buildType"
assert_eq "$(jq -r '.predicate.invocation.parameters.args."build-arg:VERSION"' "$T/prov.json")" "1.0" "mode=max records the build args"
assert_eq "$(jq -r '.predicate.invocation.environment.platform' "$T/prov.json")" "linux/amd64" "provenance platform"
assert_eq "$(jq -r '.predicate.spdxVersion' "$T/sbom.json")" "SPDX-2.3" "SBOM format"
assert_eq "$(jq -r '[.predicate.packages[] | .name + "=" + .versionInfo] | sort | join(" ")' "$T/sbom.json")" "busybox=1.36.1-r5 musl=1.2.4-r2" "the SBOM's apk packages"
contains -F 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64' "$T/sbom.json" || fail "the SBOM lacks the purl of musl"
# The image itself is intact: the platform's manifest pulls and runs its layers.
skopeo inspect "${sk[@]}" "docker://$repo@$image" >"$T/img.json" || fail "the image manifest in the index cannot be read"

# A plain --push: buildx's default mode=min provenance (no build args in it).
"$OCIB" build --tag "$repo:2" --build-arg VERSION=2.0 --push "$ctx" >"$T/p2.out" 2>"$T/p2.err" || { tail "$T/p2.err" >&2; fail "--push failed"; }
skopeo inspect "${sk[@]}" --raw "docker://$repo:2" >"$T/i2.json"
assert_eq "$(jq -r '[.manifests[] | select(.annotations."vnd.docker.reference.type" == "attestation-manifest")] | length' "$T/i2.json")" "1" "a plain --push attaches a provenance"
# --provenance=false and BUILDX_NO_DEFAULT_ATTESTATIONS: a plain image manifest.
"$OCIB" build --tag "$repo:3" --push --provenance=false "$ctx" >"$T/p3.out" 2>"$T/p3.err" || { tail "$T/p3.err" >&2; fail "--provenance=false failed"; }
assert_eq "$(skopeo inspect "${sk[@]}" --raw "docker://$repo:3" | jq -r .mediaType)" "application/vnd.oci.image.manifest.v1+json" "--provenance=false pushes a plain manifest"
BUILDX_NO_DEFAULT_ATTESTATIONS=1 "$OCIB" build --tag "$repo:4" --push "$ctx" >"$T/p4.out" 2>"$T/p4.err" || { tail "$T/p4.err" >&2; fail "push failed"; }
assert_eq "$(skopeo inspect "${sk[@]}" --raw "docker://$repo:4" | jq -r .mediaType)" "application/vnd.oci.image.manifest.v1+json" "BUILDX_NO_DEFAULT_ATTESTATIONS pushes a plain manifest"

# Usage errors: exit 2 before any work.
for bad in "--provenance=mode=maxx" "--sbom=wat=1" "--attest=type=provenace"; do
  rc=0
  "$OCIB" build "$bad" "$ctx" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  assert_eq "$rc" 2 "exit status of $bad"
  if contains -F '#1' "$T/bad.err"; then fail "$bad: work started before the usage error"; fi
done
contains -F 'did you mean' "$T/bad.err" || fail "--attest=type=provenace has no suggestion: $(cat "$T/bad.err")"
log PASS
