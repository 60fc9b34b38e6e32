#!/usr/bin/env bash
# Eight concurrent ocib processes on one store, building overlapping Dockerfiles: every
# shared step runs exactly once (the others wait on its lock and reuse it), each build still
# succeeds, and `ocib store check` finds the store consistent. Then du and prune.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
for i in 1 2 3 4 5 6 7 8; do
  cat >"$ctx/Dockerfile.$i" <<DF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN sleep 1 && echo shared > /shared
RUN echo variant $i > /variant
DF
done
export OCIB_ROOT="$T/store"
pids=()
for i in 1 2 3 4 5 6 7 8; do
  "$OCIB" build -f "$ctx/Dockerfile.$i" -t "v:$i" -o type=oci,dest="$T/v$i.tar" \
    --metadata-file "$T/m$i.json" --progress=plain "$ctx" >"$T/b$i.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { cat "$T/b$((i + 1)).log" >&2; fail "concurrent build $((i + 1)) failed"; }
done

# Every vertex key must have been executed (cached == false) by exactly one build.
jq -s '[.[] | .["ocib.vertices"][]] | group_by(.key) |
       map({name: .[0].name, runs: (map(select(.cached == false)) | length), seen: length})' \
  "$T"/m?.json >"$T/runs.json"
log "executions per step: $(jq -c 'map([.name, .runs, .seen])' "$T/runs.json")"
bad=$(jq '[.[] | select(.runs != 1)] | length' "$T/runs.json")
[[ $bad -eq 0 ]] || fail "some steps ran more or less than once: $(jq -c '[.[] | select(.runs != 1)]' "$T/runs.json")"
shared=$(jq '[.[] | select(.seen == 8)] | length' "$T/runs.json")
[[ $shared -eq 3 ]] || fail "expected 3 steps shared by all 8 builds, got $shared"
for i in 1 2 3 4 5 6 7 8; do
  oci_extract "$T/v$i.tar" "$T/l$i"
  oci_validate "$T/l$i" "$(oci_ref "$T/l$i")"
done

ocib_ok check1 store check
grep -q ': ok$' "$T/check1.out" || fail "store check is not ok: $(cat "$T/check1.out")"
ocib_ok du du
grep -q '^blobs:' "$T/du.out" || fail "ocib du printed no blob line"

# A corrupted blob is found by store check.
victim=$(ls "$OCIB_ROOT/blobs/sha256" | head -n 1)
cp "$OCIB_ROOT/blobs/sha256/$victim" "$T/victim.bak"
echo garbage >>"$OCIB_ROOT/blobs/sha256/$victim"
if ocib_run check2 store check; then fail "store check missed a corrupted blob"; fi
grep -q "blob sha256:$victim has content" "$T/check2.out" || fail "store check did not name the blob: $(cat "$T/check2.out")"
cp "$T/victim.bak" "$OCIB_ROOT/blobs/sha256/$victim"

# Pruning fresh entries with an age filter keeps them; a plain prune drops the build cache
# but keeps what the tagged images need.
ocib_ok prune1 prune --filter until=1h
grep -q '^removed 0 cache entries' "$T/prune1.out" || fail "prune --filter until=1h removed fresh entries: $(cat "$T/prune1.out")"
ocib_ok prune2 prune
grep -qv '^removed 0 cache entries' "$T/prune2.out" || fail "prune removed no cache entry: $(cat "$T/prune2.out")"
ocib_ok check3 store check
grep -q ': ok$' "$T/check3.out" || fail "store inconsistent after prune: $(cat "$T/check3.out")"
[[ -z $(ls "$OCIB_ROOT/cache") ]] || fail "cache entries left after prune"
# The next build works again (re-executes, since the cache is gone).
ocib_ok again build -f "$ctx/Dockerfile.1" -t v:1 -o type=oci,dest="$T/again.tar" --metadata-file "$T/again.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/again.json") -ge 1 ]] ||
  fail "build after prune reported everything cached"
