#!/usr/bin/env bash
# User errors: a Dockerfile syntax error names the file and line; a missing context,
# Dockerfile or target stage gives a clear error and a non-zero exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
FROBNICATE /bin/busybox
CMD ["/bin/busybox","true"]
DF

# Unknown instruction on line 3.
rc=0
ocib_run syntax build -t err:1 -o type=oci,dest="$T/err.tar" --progress=plain "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "a Dockerfile with an unknown instruction was accepted"
assert_file_contains "$T/syntax.err" "Dockerfile:3:" "stderr for an unknown instruction on line 3"
grep -qi "unknown instruction" "$T/syntax.err" || { show_err syntax; fail "stderr does not say 'unknown instruction'"; }
[[ ! -e $T/err.tar ]] || fail "a rejected Dockerfile still produced $T/err.tar"

# Missing context directory.
rc=0
ocib_run noctx build -t err:1 -o type=oci,dest="$T/err.tar" "$T/no-such-context" || rc=$?
[[ $rc -ne 0 ]] || fail "a build with a missing context succeeded"
assert_file_contains "$T/noctx.err" "ocib: error:" "stderr for a missing context"
assert_file_contains "$T/noctx.err" "no-such-context" "stderr for a missing context (should name the path)"

# Missing Dockerfile given with -f.
rc=0
ocib_run nofile build -f "$T/no-such-Dockerfile" -t err:1 -o type=oci,dest="$T/err.tar" "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "a build with a missing -f Dockerfile succeeded"
assert_file_contains "$T/nofile.err" "ocib: error:" "stderr for a missing Dockerfile"
assert_file_contains "$T/nofile.err" "no-such-Dockerfile" "stderr for a missing Dockerfile (should name the path)"

# --target naming a stage that does not exist.
cat >"$ctx/Dockerfile.ok" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
DF
rc=0
ocib_run notarget build -f "$ctx/Dockerfile.ok" --target nosuchstage -t err:1 -o type=oci,dest="$T/err.tar" "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "--target with an unknown stage succeeded"
assert_file_contains "$T/notarget.err" "nosuchstage" "stderr for an unknown --target (should name the stage)"

# Unknown option: usage error, non-zero.
rc=0
ocib_run badopt build --no-such-option "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "an unknown option was accepted"
[[ ! -e $T/err.tar ]] || fail "a failed invocation produced $T/err.tar"

# -o / --cache-to / --cache-from specs are checked when the command line is read: exit 2, no
# work done (no store created), the mistake named with a suggestion.
spec_err() { # NAME EXPECTED-TEXT ARGS...
  local name=$1 want=$2 rc=0
  shift 2
  OCIB_ROOT="$T/spec-store" ocib_run "$name" build "$@" "$ctx" || rc=$?
  [[ $rc -eq 2 ]] || { show_err "$name"; fail "$name: exit $rc, want 2 (usage error)"; }
  assert_file_contains "$T/$name.err" "$want" "stderr of $name"
  [[ ! -e $T/spec-store ]] || fail "$name: the store was created before the usage error"
}
spec_err otype 'did you mean "oci"' -f "$ctx/Dockerfile.ok" -o type=ocii,dest="$T/x.tar"
spec_err odest 'type=oci needs dest=' -f "$ctx/Dockerfile.ok" -o type=oci
spec_err okey 'unknown key "dset" for type=local' -f "$ctx/Dockerfile.ok" -o type=local,dset="$T/x"
spec_err ctokey 'unknown key "mdoe"' -f "$ctx/Dockerfile.ok" --cache-to type=local,dest="$T/c",mdoe=max
spec_err cfromtype 'type=s3 is not supported' -f "$ctx/Dockerfile.ok" --cache-from type=s3,src="$T/c"
spec_err quote 'unterminated quote' -f "$ctx/Dockerfile.ok" -o 'type=image,"name=a'

# ignore-error=true: an unreachable registry cache is a warning, the build stands (buildx).
port=$(free_port)
ocib_ok ignoreerr build -f "$ctx/Dockerfile.ok" -o type=oci,dest="$T/ie.tar" \
  --cache-to type=registry,ref=127.0.0.1:$port/c/c:1,ignore-error=true --insecure-registry 127.0.0.1:$port "$ctx"
assert_file_contains "$T/ignoreerr.err" "ignore-error=true" "warning of a failed cache export"
[[ -s $T/ie.tar ]] || fail "ignore-error=true: the image was not written"
rc=0
ocib_run noignore build -f "$ctx/Dockerfile.ok" -o type=oci,dest="$T/ni.tar" \
  --cache-to type=registry,ref=127.0.0.1:$port/c/c:1 --insecure-registry 127.0.0.1:$port "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "an unreachable --cache-to without ignore-error succeeded"
