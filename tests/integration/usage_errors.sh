#!/usr/bin/env bash
# Every usage error exits 2 before any step runs, with a suggestion where one exists: unknown
# commands, flags and choice values, missing values, bad -o / --cache-to / --secret specs,
# for build, bake and the other commands. "Before any step" is checked three ways: no store
# is created, no progress line is printed, and the Dockerfile's RUN (which writes a marker
# into the image) leaves no output. The same command line, corrected, does build: the marker
# arrives through a CSV-quoted -o spec (a comma in dest=).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo ran >/marker"]
DF
store="$T/store"

usage() { # NAME WANTED-TEXT ARGS...
  local name=$1 want=$2 rc=0
  shift 2
  OCIB_ROOT="$store" ocib_run "$name" "$@" || rc=$?
  [[ $rc -eq 2 ]] || { show_err "$name"; fail "$name ($*): exit $rc, want 2"; }
  assert_file_contains "$T/$name.err" "$want" "stderr of $name"
  assert_file_contains "$T/$name.err" "ocib: error:" "stderr of $name"
  [[ ! -e $store ]] || fail "$name: the store was created before the usage error"
  [[ ! -e $T/out ]] || fail "$name: an output was written before the usage error"
  if contains -E '^#[0-9]+ ' "$T/$name.err"; then fail "$name: a step started before the usage error"; fi
}
out=(-o type=local,dest="$T/out" --progress=plain)

# Commands and flags.
usage cmd 'unknown command "bulid"; did you mean "build"?' bulid "$ctx"
usage flag 'unknown flag --pussh; did you mean "--push"?' build "${out[@]}" --pussh "$ctx"
usage flageq 'unknown flag --no-cach; did you mean "--no-cache"?' build "${out[@]}" --no-cach=true "$ctx"
usage short 'unknown flag -x' build "${out[@]}" -x "$ctx"
usage global 'unknown flag --verison; did you mean "--version"?' --verison
usage sub 'unknown manifest command "craete"; did you mean "create"?' manifest craete -t a b
usage subflag 'unknown flag --rwa; did you mean "--raw"?' manifest inspect --rwa x
usage storecmd 'unknown store command "chek"; did you mean "check"?' store chek
usage prune 'unknown flag --al; did you mean "--all"?' prune --al

# Choice values, each with a suggestion.
usage progress 'unknown --progress value "plian" (auto, tty, plain, rawjson, quiet); did you mean "plain"?' \
  build -o type=local,dest="$T/out" --progress=plian "$ctx"
usage network 'did you mean "host"?' build "${out[@]}" --network hostt "$ctx"
usage pull 'unknown --pull value "alwys"' build "${out[@]}" --pull=alwys "$ctx"
usage isolation 'did you mean "full"?' build "${out[@]}" --isolation=ful "$ctx"
usage call 'did you mean "check"?' build "${out[@]}" --call=chek "$ctx"
usage print 'did you mean "graph"?' build "${out[@]}" --print grpah "$ctx"
usage allow 'did you mean "security.insecure"?' build "${out[@]}" --allow network.host,security.insecur "$ctx"

# Missing and malformed values.
usage missing 'flag --target needs a value' build "${out[@]}" "$ctx" --target
usage jobs '--jobs needs a positive number' build "${out[@]}" -j 0 "$ctx"
usage switch 'flag --push takes no value' build "${out[@]}" --push=maybe "$ctx"
usage nctx 'takes exactly one argument, got 2' build "${out[@]}" "$ctx" "$ctx"
usage noctx 'takes exactly one argument, got 0' build "${out[@]}"
usage otype 'did you mean "oci"' build --progress=plain -o type=ocii,dest="$T/out" "$ctx"
usage okey 'unknown key "dset" for type=local' build --progress=plain -o type=local,dset="$T/out" "$ctx"
usage oquote 'unterminated quote' build --progress=plain -o 'type=image,"name=a' "$ctx"
usage cacheto 'unknown key "mdoe"' build "${out[@]}" --cache-to type=local,dest="$T/c",mdoe=max "$ctx"
usage cachefrom 'type=s3 is not supported' build "${out[@]}" --cache-from type=s3,src="$T/c" "$ctx"
usage secret 'did you mean "source"?' build "${out[@]}" --secret id=a,sorce=/etc/hostname "$ctx"
usage provquote 'unterminated quote' build "${out[@]}" --provenance 'mode="max' "$ctx"
usage attest 'did you mean "provenance"?' build "${out[@]}" --attest 'type=provenace,"mode=max"' "$ctx"
usage ulimit 'did you mean "nofile"?' build "${out[@]}" --ulimit nofiel=1 "$ctx"
usage timeline 'does not exist' build "${out[@]}" --timeline "$T/no/such/dir/t.html" "$ctx"
usage metadata 'does not exist' build "${out[@]}" --metadata-file "$T/no/such/dir/m.json" "$ctx"
usage iidfile 'is a directory' build "${out[@]}" --iidfile "$T" "$ctx"

# bake: its flags are in the same table.
usage bakeflag 'unknown flag --pussh; did you mean "--push"?' bake --pussh
usage bakelist 'did you mean "targets"?' bake --list=target
usage bakeset 'want TARGET.KEY=VALUE' bake --set nodot
usage bakejobs '--jobs needs a positive number' bake -j x

# Every flag --help lists is taken by its command (none lacks a handler), and none starts
# work against a context that does not exist.
for verb in build bake; do
  "$OCIB" "$verb" --help >"$T/$verb.help"
  while read -r flag takes; do
    rc=0
    if [[ -n $takes ]]; then args=("$flag=x"); else args=("$flag"); fi
    OCIB_ROOT="$store" "$OCIB" "$verb" "${args[@]}" "$T/no-such-context" >"$T/f.out" 2>"$T/f.err" </dev/null || rc=$?
    [[ $rc -ne 0 ]] || fail "ocib $verb ${args[*]} with a missing context succeeded"
    if contains -F 'has no handler' "$T/f.err"; then fail "ocib $verb: $flag has no handler"; fi
    [[ ! -e $store ]] || fail "ocib $verb ${args[*]}: the store was created"
  done < <(sed -nE 's/^  (-[a-z], |    )(--[a-z-]+)( [^ ]|\[=)?.*/\2 \3/p' "$T/$verb.help" | grep -v -- '^--help')
done

# The same command line, corrected, builds; a quoted dest= holds a comma (buildx's CSV).
OCIB_ROOT="$store" ocib_ok good build -o "type=local,\"dest=$T/out,1\"" --progress=plain --pull never "$ctx"
assert_eq "$(cat "$T/out,1/marker")" "ran" "the RUN's marker in the output"
[[ -d $store ]] || fail "the good build made no store: the checks above prove nothing"

# --help is no usage error, and the help is the table's.
ocib_ok help build --help
assert_file_contains "$T/help.out" "Usage: ocib build [OPTIONS] CONTEXT"
ocib_ok help2 help bake
assert_file_contains "$T/help2.out" "Usage: ocib bake"
log "ok"
