#!/usr/bin/env bash
# Critical path first, by recorded durations: with one job slot, a branch of three quick RUNs
# (3 steps: the longer path by guess) starts before a branch of one slow RUN on a first
# build; once durations are recorded, a rebuild (--no-cache) starts the slow branch first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox

FROM base AS quick
RUN ["/bin/busybox", "sh", "-c", "echo 1 > /q1"]
RUN ["/bin/busybox", "sh", "-c", "echo 2 > /q2"]
RUN ["/bin/busybox", "sh", "-c", "echo 3 > /q3"]

FROM base AS slow
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2 && echo s > /s"]

FROM base
COPY --from=quick /q3 /q3
COPY --from=slow /s /s
DF

started() { # META NAME-REGEX -> start time of the matching step
  jq -r --arg re "$2" '.["ocib.vertices"][] | select(.name | test($re)) | .started' "$1"
}
first_branch() { # META -> quick | slow
  local q s
  q=$(started "$1" 'echo 1 > /q1')
  s=$(started "$1" 'sleep 2')
  [[ -n $q && -n $s ]] || fail "metadata lacks the branch steps: $(cat "$1")"
  if [[ $q < $s ]]; then echo quick; else echo slow; fi
}

ocib_ok b1 build -j 1 --progress=plain --metadata-file "$T/m1.json" "$ctx"
assert_eq "$(first_branch "$T/m1.json")" quick "branch started first with no recorded durations (3 steps > 1)"
[[ -s $OCIB_ROOT/durations.json ]] || fail "no durations recorded in the store"
ocib_ok b2 build -j 1 --no-cache --progress=plain --metadata-file "$T/m2.json" "$ctx"
assert_eq "$(first_branch "$T/m2.json")" slow "branch started first once the slow RUN's 2 s is recorded"
