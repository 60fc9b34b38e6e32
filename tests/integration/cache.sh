#!/usr/bin/env bash
# Build cache: a rebuild in the same store is fully cached and byte-identical; changing a
# file COPYed by one branch re-runs only that branch and what depends on it; --no-cache-filter
# re-runs the named stages and everything built on them (BuildKit: a changed input invalidates
# what is below it); a local cache export/import serves a fresh store.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo

ctx="$T/ctx"
make_ctx "$ctx"
echo "first" >"$ctx/one.txt"
echo "second" >"$ctx/two.txt"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
COPY one.txt /src/one.txt
RUN sleep 1 && cat /src/one.txt > /one && cat /proc/sys/kernel/random/uuid > /stamp1

FROM base AS b2
COPY two.txt /src/two.txt
RUN sleep 1 && cat /src/two.txt > /two

FROM base AS final
COPY --from=b1 /one /stamp1 /
COPY --from=b2 /two /two
RUN cat /one /two > /both
CMD ["/bin/cat","/both"]
DF

build() { # N
  ocib_ok "build$1" build -t cache:1 -o type=oci,dest="$T/out$1.tar" \
    --metadata-file "$T/meta$1.json" --progress=plain "$ctx"
  [[ -f $T/meta$1.json ]] || fail "build $1 wrote no metadata file"
}
digest() { jq -r '.["containerimage.digest"]' "$T/meta$1.json"; }
steps='select(.name | test("\\] (COPY|RUN) "))'

build 1
n=$(vertices "$T/meta1.json" "$steps" | wc -l)
[[ $n -ge 8 ]] || { jq . "$T/meta1.json" >&2; fail "expected >= 8 COPY/RUN vertices in the first build, got $n"; }
if vertices "$T/meta1.json" "$steps | select(.cached)" | contains .; then
  vertices "$T/meta1.json" "$steps | select(.cached) | .name" >&2
  fail "first build in an empty store reports cached vertices"
fi

# 1. No-op rebuild.
build 2
uncached=$(vertices "$T/meta2.json" 'select(.cached != true) | .name')
[[ -z $uncached ]] || fail "rebuild re-ran vertices that should be cached: $uncached"
[[ $(vertices "$T/meta2.json" "$steps" | wc -l) -eq $n ]] || fail "rebuild lists a different number of steps"
grep -qE '^#[0-9]+ CACHED' "$T/build2.err" || { show_err build2; fail "plain progress of the rebuild has no '#N CACHED' line"; }
assert_eq "$(digest 2)" "$(digest 1)" "containerimage.digest of the rebuild"
cmp "$T/out1.tar" "$T/out2.tar" || fail "rebuild produced a different archive (not byte-identical)"
skopeo inspect "oci-archive:$T/out2.tar" >/dev/null 2>&1 || fail "skopeo cannot read the rebuilt archive"

# 2. Change a file only b2 uses.
echo "changed" >"$ctx/two.txt"
build 3
[[ $(digest 3) != "$(digest 1)" ]] || fail "changing two.txt did not change the image digest"
# Stays cached: everything in base and b1, and the final COPY --from=b1 (its inputs are unchanged).
wrong=$(vertices "$T/meta3.json" "$steps | select(.stage == \"base\" or .stage == \"b1\" or (.name | test(\"COPY --from=b1 \"))) | select(.cached != true) | .name")
[[ -z $wrong ]] || fail "after changing two.txt these should be cached but re-ran: $wrong"
# Re-runs: b2's COPY and RUN, and in the final stage COPY --from=b2 and the RUN after it.
# (jq regexes: \\[ in the jq string is a literal [)
for re in '^\\[b2 [0-9/]+\\] COPY two.txt ' '^\\[b2 [0-9/]+\\] RUN ' \
  '^\\[final [0-9/]+\\] COPY --from=b2 ' '^\\[final [0-9/]+\\] RUN cat /one /two'; do
  got=$(vertices "$T/meta3.json" "select(.name | test(\"$re\")) | .cached")
  [[ -n $got ]] || { jq -c '.["ocib.vertices"][] | {name, cached}' "$T/meta3.json" >&2; fail "no vertex matching /$re/ in the third build"; }
  [[ $got == false ]] || fail "vertex /$re/ should have re-run after changing two.txt (cached=$got)"
done
oci_extract "$T/out3.tar" "$T/layout3"
cfg=$(oci_config "$T/layout3")
assert_eq "$(jq -c .config.Cmd "$cfg")" '["/bin/cat","/both"]' "Cmd of the third build"

# 3. --no-cache-filter: the named stages' steps run again, and every step built on them (the
# final stage copies b1's new /stamp1, not the previous build's); other stages stay cached.
ocib_ok b1-before build --target b1 -o type=local,dest="$T/b1-before" "$ctx"
ncf() { # NAME FILTER
  ocib_ok "$1" build -t cache:1 --no-cache-filter "$2" -o type=oci,dest="$T/$1.tar" \
    -o type=local,dest="$T/$1-fs" --metadata-file "$T/$1.json" --progress=plain "$ctx"
  # The distinct "stage:cached" pairs of the COPY/RUN steps, sorted.
  jq -r "[.[\"ocib.vertices\"][] | $steps | \"\\(.stage):\\(.cached)\"] | unique | join(\" \")" "$T/$1.json"
}
got=$(ncf ncf1 b1)
assert_eq "$got" "b1:false b2:true base:true final:false" "stage/cached pairs with --no-cache-filter b1"
ocib_ok b1-after build --target b1 -o type=local,dest="$T/b1-after" "$ctx"
[[ $(cat "$T/b1-after/stamp1") != "$(cat "$T/b1-before/stamp1")" ]] || fail "--no-cache-filter b1 did not re-run b1's RUN"
assert_eq "$(cat "$T/ncf1-fs/stamp1")" "$(cat "$T/b1-after/stamp1")" "final stage's copy of b1's re-run output"
[[ $(vertices "$T/ncf1.json" "$steps | select(.stage == \"b1\")" | wc -l) -eq 2 ]] ||
  fail "expected b1's COPY and RUN in the --no-cache-filter build"
got=$(ncf ncf2 B2,final)  # a list; stage names match case-insensitively, like FROM ... AS
assert_eq "$got" "b1:true b2:false base:true final:false" "stage/cached pairs with --no-cache-filter B2,final"
grep -qE '^#[0-9]+ CACHED' "$T/ncf2.err" || fail "nothing was cached with --no-cache-filter B2,final"
ocib_ok ncf3 build -t cache:1 --no-cache-filter nosuchstage -o type=oci,dest="$T/ncf3.tar" "$ctx"
grep -q 'no stage named "nosuchstage"' "$T/ncf3.err" || fail "no warning for an unknown --no-cache-filter stage: $(cat "$T/ncf3.err")"

got=$(ncf ncf4 b2)
# b2's RUN re-ran and wrote the same /two: what reads b2 by content (final's COPY --from=b2)
# is keyed by the files it copies (BuildKit's content-based cache), so final stays cached.
assert_eq "$got" "b1:true b2:false base:true final:true" "stage/cached pairs with --no-cache-filter b2 (same output)"

# A stage that re-runs (its key changed) but produces the same files: what binds or copies
# them is served from the cache, and so is what is built on that; different files re-run it.
kctx="$T/kctx"
make_ctx "$kctx"
cat >"$kctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
FROM base AS gen
ARG V=1
ARG OUT=same
RUN ["/bin/busybox","sh","-c","echo $OUT > /out; echo $V > /other"]
FROM base AS final
RUN --mount=type=bind,from=gen,source=/out,target=/m ["/bin/busybox","sh","-c","cat /m > /got; cat /proc/sys/kernel/random/uuid >> /got"]
COPY --from=gen /out /copied
RUN ["/bin/busybox","sh","-c","cat /proc/sys/kernel/random/uuid > /after"]
DF
ck() { # NAME ARGS...: builds kctx; prints the cached flags of final's steps
  local name=$1
  shift
  ocib_ok "$name" build "$@" -o type=local,dest="$T/$name-fs" --metadata-file "$T/$name.json" --progress=plain "$kctx"
  jq -r '[.["ocib.vertices"][] | select(.stage == "final") | .cached] | map(tostring) | join(" ")' "$T/$name.json"
}
ck k1 >/dev/null
assert_eq "$(ck k2 --build-arg V=2)" "true true true" "final's steps after gen re-ran with the same /out"
assert_eq "$(jq -r '[.["ocib.vertices"][] | select(.stage == "gen") | .cached] | map(tostring) | join(" ")' "$T/k2.json")" \
  "false" "gen's RUN with a new V"
cmp "$T/k1-fs/got" "$T/k2-fs/got" || fail "the bind-mount RUN re-ran although the mounted file was the same"
cmp "$T/k1-fs/after" "$T/k2-fs/after" || fail "the step after the COPY --from re-ran although the copied file was the same"
assert_eq "$(ck k3 --build-arg V=2 --build-arg OUT=other)" "false false false" "final's steps after gen wrote a different /out"
assert_eq "$(head -n1 "$T/k3-fs/got") $(cat "$T/k3-fs/copied")" "other other" "the re-run steps' view of gen's new /out"
assert_eq "$(ck k4 --build-arg V=2 --build-arg OUT=other)" "true true true" "a no-op rebuild after the content-keyed steps"

# Cache export/import through a local directory: a fresh store with --cache-from re-executes
# no step whose result is in the imported cache, and produces the same image.
ocib_ok exp build -t cache:1 --cache-to type=local,dest="$T/cachedir",mode=max \
  -o type=oci,dest="$T/exp.tar" --metadata-file "$T/exp.json" --progress=plain "$ctx"
[[ -f $T/cachedir/ocib-cache.json ]] || fail "--cache-to wrote no ocib-cache.json"
export OCIB_ROOT="$T/fresh-store"
ocib_ok imp build -t cache:1 --cache-from type=local,src="$T/cachedir" \
  -o type=oci,dest="$T/imp.tar" --metadata-file "$T/imp.json" --progress=plain "$ctx"
ran=$(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/imp.json")
[[ $ran -eq 0 ]] || fail "$ran steps re-ran despite --cache-from: $(jq -c '.["ocib.vertices"]' "$T/imp.json")"
assert_eq "$(jq -r '.["containerimage.digest"]' "$T/imp.json")" "$(jq -r '.["containerimage.digest"]' "$T/exp.json")" "image digest after cache import"
