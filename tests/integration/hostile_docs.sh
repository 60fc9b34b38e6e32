#!/usr/bin/env bash
# The hostile document corpus (tests/hostile/gen_hostile_docs.py): OCI layouts given as
# oci-layout:// build contexts, oci-archives given to `ocib import`, and local cache directories
# given to --cache-from, each with wrong-typed fields, malformed or deeply nested JSON, or a
# chain of 20,000 nested indexes. Every one must fail cleanly: exit status 1 or 2 (not 134, an
# uncaught exception, nor 139, a stack overflow) with an error naming the cause.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3

corpus="$T/corpus"
python3 "$(dirname "$0")/../hostile/gen_hostile_docs.py" "$corpus" || fail "cannot generate the corpus"

ctx="$T/ctx"
mkdir -p "$ctx"
echo hi >"$ctx/f"
printf 'FROM base\nCOPY f /f\n' >"$ctx/Dockerfile.layout"
printf 'FROM scratch\nCOPY f /f\n' >"$ctx/Dockerfile.cache"

n=0
bad=()
while IFS=$'\t' read -r kind path expect; do
  n=$((n + 1))
  name="case$n"
  rc=0
  case $kind in
    layout) ocib_run "$name" build -f "$ctx/Dockerfile.layout" --build-context "base=oci-layout://$path" \
      -o type=oci,dest="$T/out.tar" "$ctx" || rc=$? ;;
    archive) ocib_run "$name" import "$path" hostile:1 || rc=$? ;;
    cache) ocib_run "$name" build -f "$ctx/Dockerfile.cache" --cache-from "type=local,src=$path" \
      -o type=oci,dest="$T/out.tar" "$ctx" || rc=$? ;;
    *) fail "cases.tsv: unknown kind $kind" ;;
  esac
  if [[ $rc -ne 1 && $rc -ne 2 ]]; then
    show_err "$name"
    bad+=("$kind $(basename "$path"): exit status $rc, want 1 or 2")
  elif ! grep -qF -- "$expect" "$T/$name.err"; then
    show_err "$name"
    bad+=("$kind $(basename "$path"): the error does not say '$expect'")
  elif [[ $kind != cache ]] && ! grep -qF -- "$(basename "$path")" "$T/$name.err"; then
    # Layout and archive errors name the file (the index.json, blob or archive) they are about.
    show_err "$name"
    bad+=("$kind $(basename "$path"): the error does not name the file")
  fi
done <"$corpus/cases.tsv"
[[ $n -gt 40 ]] || fail "only $n cases in the corpus"
if [[ ${#bad[@]} -gt 0 ]]; then
  printf '  %s\n' "${bad[@]}" >&2
  fail "${#bad[@]} of $n hostile documents were not refused cleanly"
fi
log "$n hostile documents refused cleanly"
