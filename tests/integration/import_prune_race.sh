#!/usr/bin/env bash
# `ocib import` and `ocib pull` running while `ocib prune` runs again and again on the same
# store: importers and pullers hold the store's GC lock shared (as builds do), so prune never
# deletes a blob they have stored but not yet tagged, nor an in-flight `*.tmp-*` file of theirs.
# Every command must succeed, every image must be complete right after it was tagged, and
# `ocib store check` must find the store consistent at the end.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3 curl
start_registry "$T/registry"

# Images in the registry, pushed from a separate store: three tags, two layers' worth of data
# each, so a pull takes a while and stores several blobs before it tags.
export OCIB_ROOT="$T/pusher"
for k in 0 1 2; do
  d="$T/seed$k"
  mkdir -p "$d"
  head -c 300000 /dev/urandom >"$d/data"
  echo "$k" >"$d/k"
  tar -C "$d" -czf "$T/seed$k.tgz" .
  ocib_ok seed$k import "$T/seed$k.tgz" "seed:$k"
  ocib_ok push$k push --insecure-registry "$REG" "seed:$k" "$REG/race/img:$k"
done

export OCIB_ROOT="$T/store"
ROUNDS=${OCIB_IT_ROUNDS:-25}

# blobs_complete NAME: the tagged image NAME's manifest, config and layers are in the store.
blobs_complete() {
  local digest m d
  digest=$(jq -r --arg n "$1" '.[$n] // empty' "$OCIB_ROOT/images.json")
  [[ -n $digest ]] || { echo "no tag $1"; return 1; }
  m="$OCIB_ROOT/blobs/sha256/${digest#sha256:}"
  [[ -f $m ]] || { echo "$1: manifest $digest missing"; return 1; }
  for d in $(jq -r '.config.digest, .layers[].digest' "$m"); do
    [[ -f $OCIB_ROOT/blobs/sha256/${d#sha256:} ]] || { echo "$1: blob $d missing"; return 1; }
  done
}

importer() {
  local i d
  for ((i = 0; i < ROUNDS; i++)); do
    d="$T/imp$i"
    mkdir -p "$d"
    head -c 200000 /dev/urandom >"$d/data"
    tar -C "$d" -cf "$T/imp$i.tar" .
    "$OCIB" import "$T/imp$i.tar" "imp:$i" >"$T/imp$i.out" 2>"$T/imp$i.err" || { echo "import $i failed: $(cat "$T/imp$i.err")"; return 1; }
    blobs_complete "imp:$i" || return 1
    # Untagged again: its blobs become garbage for the next prune.
    (( i % 2 == 0 )) || "$OCIB" rmi "imp:$i" >/dev/null 2>"$T/rmi$i.err" || { echo "rmi $i failed: $(cat "$T/rmi$i.err")"; return 1; }
  done
}

puller() {
  local i ref
  for ((i = 0; i < ROUNDS; i++)); do
    ref="$REG/race/img:$((i % 3))"
    "$OCIB" pull --insecure-registry "$REG" "$ref" >"$T/pull$i.out" 2>"$T/pull$i.err" || { echo "pull $i failed: $(cat "$T/pull$i.err")"; return 1; }
    blobs_complete "$ref" || return 1
    # Untagged: the next pull of it must fetch (and store) every blob again.
    "$OCIB" rmi "$ref" >/dev/null 2>"$T/prmi$i.err" || { echo "rmi $ref failed: $(cat "$T/prmi$i.err")"; return 1; }
  done
}

pruner() {
  local i
  for ((i = 0; i < ROUNDS * 3; i++)); do
    "$OCIB" prune >"$T/prune$i.out" 2>"$T/prune$i.err" || { echo "prune $i failed: $(cat "$T/prune$i.err")"; return 1; }
  done
}

importer >"$T/importer.log" 2>&1 &
ipid=$!
puller >"$T/puller.log" 2>&1 &
ppid=$!
pruner >"$T/pruner.log" 2>&1 &
rpid=$!
rc=0
wait "$ipid" || { rc=1; log "importer: $(cat "$T/importer.log")"; }
wait "$ppid" || { rc=1; log "puller: $(cat "$T/puller.log")"; }
wait "$rpid" || { rc=1; log "pruner: $(cat "$T/pruner.log")"; }
[[ $rc -eq 0 ]] || fail "a command failed while import/pull raced with prune"

# The images still tagged (every even import) are complete, and the store is consistent.
for ((i = 0; i < ROUNDS; i += 2)); do
  msg=$(blobs_complete "imp:$i") || fail "after the race: $msg"
done
ocib_ok check store check
grep -q ': ok$' "$T/check.out" || fail "store check after the race: $(cat "$T/check.out")"
# A final prune (nothing running) leaves no temp file behind in blobs/ or cache/.
ocib_ok prune_last prune
left=$(find "$OCIB_ROOT/blobs" "$OCIB_ROOT/cache" -name '*.tmp-*' | head -5)
[[ -z $left ]] || fail "temp files left after prune: $left"
