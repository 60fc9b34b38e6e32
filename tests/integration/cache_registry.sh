#!/usr/bin/env bash
# Build cache in a registry (Debian's docker-registry on 127.0.0.1):
#  - --cache-to type=registry,mode=max pushes an OCI artifact (ocib cache config + one layer per
#    step); a fresh store with --cache-from type=registry runs no step and makes the same image;
#    it fetches only the blobs of the steps it needs;
#  - mode=min holds only the image's own layers: a stage that is merely COPY --from'd runs again;
#  - --cache-to type=inline puts the cache in the pushed image's config; a fresh store with
#    --cache-from REF (the image) runs no step;
#  - plain HTTP still needs --insecure-registry: an export fails, an import warns.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
# Push mechanics of plain images: no default provenance attestation here (it_attestations
# covers them).
export BUILDX_NO_DEFAULT_ATTESTATIONS=1
need_cmd skopeo python3 curl
[[ -x /usr/bin/docker-registry ]] || skip "docker-registry not installed (apt-get install docker-registry)"

start_registry "$T/registry"
reg=$REG

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
FROM base AS b1
RUN echo one > /one
FROM base
COPY --from=b1 /one /one
RUN cat /one /one > /two
CMD ["/bin/cat", "/two"]
DOCKERFILE
steps='select(.name | test("\\] (COPY|RUN) "))'
digest() { jq -r '.["containerimage.digest"]' "$T/$1.json"; }
# The steps of a build that ran instead of coming from a cache.
ran() { vertices "$T/$1.json" "$steps | select(.cached != true) | .name"; }
build() { # NAME STORE ARGS...
  local name=$1
  export OCIB_ROOT="$T/$2"
  shift 2
  ocib_ok "$name" build --progress=plain --metadata-file "$T/$name.json" "$@" "$ctx"
}
cache_ref="$reg/cache/app:buildcache"

# 1. mode=max export: an OCI artifact whose layers are every step's blob.
build max s1 --insecure-registry "$reg" --cache-to "type=registry,ref=$cache_ref,mode=max" \
  -o type=oci,dest="$T/max.tar"
grep -q "exported cache (mode=max, 5 steps) to $cache_ref" "$T/max.err" ||
  fail "no cache export note: $(grep -i cache "$T/max.err")"
skopeo inspect --raw --tls-verify=false "docker://$cache_ref" >"$T/artifact.json" ||
  fail "skopeo cannot read the cache artifact"
assert_eq "$(jq -r .mediaType "$T/artifact.json")" "application/vnd.oci.image.manifest.v1+json" "artifact manifest type"
assert_eq "$(jq -r .config.mediaType "$T/artifact.json")" "application/vnd.ocib.cache.config.v1+json" "artifact config type"
assert_eq "$(jq -r .artifactType "$T/artifact.json")" "application/vnd.ocib.cache.config.v1+json" "artifactType"
want=$(vertices "$T/max.json" "$steps | .digest" | sort -u)
got=$(jq -c '.layers[].digest' "$T/artifact.json" | sort -u)
assert_eq "$got" "$want" "artifact layers (one per step blob)"
[[ $(jq -r '.layers[].mediaType' "$T/artifact.json" | sort -u) == application/vnd.oci.image.layer.v1.tar+gzip ]] ||
  fail "artifact layers are not gzip layers: $(jq -c '[.layers[].mediaType]' "$T/artifact.json")"
curl -fsS "http://$reg/v2/cache/app/blobs/$(jq -r .config.digest "$T/artifact.json")" >"$T/cachecfg.json" ||
  fail "cannot fetch the cache config blob"
assert_eq "$(jq '.entries | length' "$T/cachecfg.json")" 5 "entries in the cache config"
assert_eq "$(jq -r '[.entries[] | .digest] | sort | unique | join(" ")' "$T/cachecfg.json")" \
  "$(jq -r '[.layers[].digest] | sort | unique | join(" ")' "$T/artifact.json")" "cache entries name the artifact's layers"

# A fresh store imports it: nothing runs, the image is the same.
build imp s2 --insecure-registry "$reg" --cache-from "type=registry,ref=$cache_ref" -o type=oci,dest="$T/imp.tar"
[[ -z $(ran imp) ]] || fail "steps re-ran despite --cache-from type=registry: $(ran imp)"
[[ $(vertices "$T/imp.json" "$steps" | wc -l) -eq 5 ]] || fail "the import build lists $(vertices "$T/imp.json" "$steps" | wc -l) steps, not 5"
grep -q "(imported cache)" "$T/imp.err" || fail "progress does not say the steps came from the imported cache"
assert_eq "$(digest imp)" "$(digest max)" "image digest after a registry cache import"
cmp "$T/max.tar" "$T/imp.tar" || fail "the import build's archive differs from the exporting build's"

# Lazily: --target base on another fresh store fetches the blobs of base's steps only.
build lazy s3 --insecure-registry "$reg" --cache-from "type=registry,ref=$cache_ref" --target base
[[ -z $(ran lazy) ]] || fail "steps re-ran in the --target base import: $(ran lazy)"
for d in $(vertices "$T/max.json" "select(.stage != \"base\") | $steps | .digest" | tr -d '"'); do
  [[ ! -e $T/s3/blobs/sha256/${d#sha256:} ]] || fail "blob $d of a step outside --target base was fetched"
done
for d in $(vertices "$T/max.json" "select(.stage == \"base\") | $steps | .digest" | tr -d '"'); do
  [[ -e $T/s3/blobs/sha256/${d#sha256:} ]] || fail "blob $d of base's steps is not in the store"
done

# 2. mode=min: the image's layers only; b1 (only COPY --from'd) is not in it and runs again.
build min s1 --insecure-registry "$reg" --cache-to "type=registry,ref=$reg/cache/app:min" -o type=oci,dest="$T/min.tar"
skopeo inspect --raw --tls-verify=false "docker://$reg/cache/app:min" >"$T/artifact-min.json" ||
  fail "skopeo cannot read the mode=min cache artifact"
assert_eq "$(jq '.layers | length' "$T/artifact-min.json")" 4 "layers of the mode=min cache (the image's 4)"
build minimp s4 --insecure-registry "$reg" --cache-from "type=registry,ref=$reg/cache/app:min" -o type=oci,dest="$T/minimp.tar"
assert_eq "$(ran minimp | tr -d '"')" "[b1 2/2] RUN echo one > /one" "steps that ran with the mode=min cache"
assert_eq "$(digest minimp)" "$(digest max)" "image digest after a mode=min import"

# 3. Inline: the pushed image carries its cache; --cache-from the image (bare REF form).
build inl s5 --insecure-registry "$reg" --cache-to type=inline -o "type=image,name=$reg/test/inline:1,push=true"
skopeo inspect --config --raw --tls-verify=false "docker://$reg/test/inline:1" >"$T/inline-config.json" ||
  fail "skopeo cannot read the pushed image's config"
assert_eq "$(jq '.["ocib.cache.v0"].entries | length' "$T/inline-config.json")" 4 "inline cache entries (the image's layers)"
skopeo inspect --raw --tls-verify=false "docker://$reg/test/inline:1" >"$T/inline-manifest.json"
assert_eq "$(jq -r '[.["ocib.cache.v0"].entries[] | .digest] | sort | join(" ")' "$T/inline-config.json")" \
  "$(jq -r '[.layers[].digest] | sort | join(" ")' "$T/inline-manifest.json")" "inline cache entries name the image's layers"
build inlimp s6 --insecure-registry "$reg" --cache-from "$reg/test/inline:1" --cache-to type=inline \
  -o type=oci,dest="$T/inlimp.tar"
grep -q "importing inline cache from $reg/test/inline:1" "$T/inlimp.err" || fail "no inline import note: $(grep -i cache "$T/inlimp.err")"
assert_eq "$(ran inlimp | tr -d '"')" "[b1 2/2] RUN echo one > /one" "steps that ran with the inline cache"
assert_eq "$(digest inlimp)" "$(digest inl)" "image digest after an inline cache import"

# An image in the local store under a short name (here imported from an archive into a fresh
# store) serves its inline cache without a registry.
build inlarch s8 --cache-to type=inline -t inl:1 -o type=oci,dest="$T/inl.tar"
export OCIB_ROOT="$T/s9"
ocib_ok inlimport import "$T/inl.tar" inl:1
build inllocal s9 --cache-from type=registry,ref=inl:1 -o type=oci,dest="$T/inllocal.tar"
assert_eq "$(ran inllocal | tr -d '"')" "[b1 2/2] RUN echo one > /one" "steps that ran with the local image's inline cache"

# 4. Plain HTTP needs --insecure-registry: the export fails with the hint, the import warns and builds.
export OCIB_ROOT="$T/s7"
if ocib_run noinsec build --cache-to "type=registry,ref=$cache_ref" -o type=oci,dest="$T/noinsec.tar" "$ctx"; then
  fail "a cache export over plain HTTP worked without --insecure-registry"
fi
grep -qi "insecure" "$T/noinsec.err" || fail "no hint about --insecure-registry: $(tail -3 "$T/noinsec.err")"
build noinsec2 s7 --cache-from "type=registry,ref=$cache_ref" -o type=oci,dest="$T/noinsec2.tar"
grep -q "warning: no cache imported from $cache_ref" "$T/noinsec2.err" || fail "no warning for an unreachable cache: $(cat "$T/noinsec2.err")"
# A tag that does not exist: a warning, not a failure.
build missing s7 --insecure-registry "$reg" --cache-from "type=registry,ref=$reg/cache/none:x" -o type=oci,dest="$T/missing.tar"
grep -q "warning: no cache imported from $reg/cache/none:x" "$T/missing.err" || fail "no warning for a missing cache tag"
# Bad specs are refused before anything runs.
if ocib_run badspec build --cache-to type=registry -o type=oci,dest="$T/bad.tar" "$ctx"; then fail "--cache-to type=registry without ref= worked"; fi
grep -q "needs ref=" "$T/badspec.err" || fail "unclear error for a cache spec without ref=: $(cat "$T/badspec.err")"

# 5. A registry with htpasswd auth: the cache goes through the credentials `ocib login` stored,
# like an image push; without them the export fails naming authentication.
if command -v htpasswd >/dev/null; then
  mkdir -p "$T/areg"
  htpasswd -Bbn alice s3cret >"$T/areg/htpasswd"
  start_registry "$T/areg" "$T/areg/htpasswd"
  areg=$REG
  export DOCKER_CONFIG="$T/dockercfg"
  printf 's3cret' | "$OCIB" login -u alice --password-stdin --insecure-registry "$areg" "$areg" >/dev/null 2>"$T/login.err" ||
    fail "login failed: $(cat "$T/login.err")"
  build authexp s1 --insecure-registry "$areg" --cache-to "type=registry,ref=$areg/team/cache:1,mode=max" -o type=oci,dest="$T/authexp.tar"
  grep -q "exported cache (mode=max, 5 steps) to $areg/team/cache:1" "$T/authexp.err" || fail "no export note for the auth registry"
  build authimp s10 --insecure-registry "$areg" --cache-from "type=registry,ref=$areg/team/cache:1" -o type=oci,dest="$T/authimp.tar"
  [[ -z $(ran authimp) ]] || fail "steps re-ran with a cache from the auth registry: $(ran authimp)"
  ocib_ok logout logout "$areg"
  export OCIB_ROOT="$T/s1"
  if ocib_run authnone build --insecure-registry "$areg" --cache-to "type=registry,ref=$areg/team/cache:2" -o type=oci,dest="$T/authnone.tar" "$ctx"; then
    fail "a cache export without credentials succeeded"
  fi
  grep -qi "auth" "$T/authnone.err" || fail "unclear error for a cache export without credentials: $(tail -3 "$T/authnone.err")"
  unset DOCKER_CONFIG
fi
