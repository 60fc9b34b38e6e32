#!/usr/bin/env bash
# The configuration file: $XDG_CONFIG_HOME/ocib/ocib.toml sets the store, the default progress
# mode and -j, and which registries are insecure; flags and environment variables override
# it; a malformed file stops every command with the file, the line and the cause.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3 curl
[[ -x /usr/bin/docker-registry ]] || skip "docker-registry not installed (apt-get install docker-registry)"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo configured > /c"]
DF
export XDG_CONFIG_HOME="$T/xdg"
mkdir -p "$XDG_CONFIG_HOME/ocib"
cfg="$XDG_CONFIG_HOME/ocib/ocib.toml"
unset OCIB_ROOT

# 1. A malformed file: every command refuses, naming file and line.
printf '[build]\n# comment\njobs = "many"\n' >"$cfg"
rc=0
ocib_run bad images || rc=$?
assert_eq "$rc" 1 "exit status with a malformed config file"
assert_file_contains "$T/bad.err" "$cfg:3: build.jobs must be a number" "error for a bad key"
printf '[bulid]\njobs = 2\n' >"$cfg"
rc=0
ocib_run bad2 info || rc=$?
assert_file_contains "$T/bad2.err" "$cfg:1: unknown section [bulid]" "error for an unknown section"

# 2. store.root and build.progress from the file; `ocib info` lists the file it read.
start_registry "$T/registry"  # used in part 3; its address goes into the file now
reg=$REG
cat >"$cfg" <<TOML
[store]
root = "$T/configured-store"
[build]
progress = "rawjson"
jobs = 1
[registry."$reg"]
http = true
TOML
ocib_ok info info
assert_file_contains "$T/info.out" "config:     $cfg" "ocib info"
assert_file_contains "$T/info.out" "store:      $T/configured-store" "ocib info store"
ocib_ok b1 build -t cfg:1 "$ctx"
[[ -d $T/configured-store ]] || fail "store.root was not used"
jq -s -e 'length > 3 and all(.[]; type == "object") and any(.[]; .type == "vertex.started")' "$T/b1.err" >/dev/null ||
  fail "build.progress = rawjson not applied: $(head -n 2 "$T/b1.err")"
# A flag beats the file; the environment beats the file.
ocib_ok b2 build --progress=plain "$ctx"
contains -E '^#[0-9]+ CACHED' "$T/b2.err" || fail "--progress=plain did not override the file"
OCIB_ROOT="$T/env-store" ocib_ok b3 build --progress=quiet "$ctx"
[[ -d $T/env-store ]] || fail "OCIB_ROOT did not override store.root"

# 3. [registry."HOST"] http = true: a push over plain HTTP to a loopback registry works
# without --insecure-registry, and is refused once the file no longer says so.
ocib_ok push push cfg:1 "$reg/cfg/app:1"
curl -fsS "http://$reg/v2/cfg/app/tags/list" | contains '"1"' || fail "the push did not reach the registry"
sed -i '/^\[registry/,$d' "$cfg"
rc=0
ocib_run push2 push cfg:1 "$reg/cfg/app:2" || rc=$?
[[ $rc -ne 0 ]] || fail "a plain-HTTP push succeeded without the registry being configured insecure"
