#!/usr/bin/env bash
# --print=lint flags the seed's anti-pattern (a stage that derives FROM a sibling branch only
# to reach the shared base) and stays quiet on the parallel shape; --print=graph/graph-json
# describe the stage graph with the critical path marked. Nothing is built.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile.serial" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox sh /bin/
FROM base AS b1
RUN sleep 2 && echo one > /one
FROM b1 AS b2
RUN sleep 2 && echo two > /two
FROM base
COPY --from=b1 /one /one
COPY --from=b2 /two /two
DOCKERFILE
cat >"$ctx/Dockerfile.parallel" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox sh /bin/
FROM base AS b1
RUN sleep 2 && echo one > /one
FROM base AS b2
RUN sleep 2 && echo two > /two
FROM base
COPY --from=b1 /one /one
COPY --from=b2 /two /two
DOCKERFILE
export OCIB_ROOT="$T/store"

ocib_ok lint1 build --print=lint -f "$ctx/Dockerfile.serial" "$ctx"
grep -q 'Dockerfile.serial:5: stage "b2" builds FROM "b1"' "$T/lint1.out" || fail "lint missed the serial shape: $(cat "$T/lint1.out")"
grep -q 'FROM base' "$T/lint1.out" || fail "lint does not suggest FROM base"
ocib_ok lint2 build --print=lint -f "$ctx/Dockerfile.parallel" "$ctx"
[[ ! -s $T/lint2.out ]] || fail "lint flagged the parallel shape: $(cat "$T/lint2.out")"

# The seed's own shape: frontend builds FROM backend but works elsewhere, and the final stage
# copies backend's output *from frontend*. The lint finds both from the paths each stage
# writes; --fix rewrites the Dockerfile (comments kept), and the fixed one builds the same files.
cat >"$ctx/Dockerfile.seed" <<'DOCKERFILE'
# base with the tools
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base AS backend
WORKDIR /src/backend
RUN echo server > server

# frontend only needs the tools
FROM backend AS frontend
WORKDIR /src/frontend
RUN echo app > app

FROM base
COPY --from=frontend /src/backend/server /server
COPY --from=frontend /src/frontend/app /app
DOCKERFILE
cp "$ctx/Dockerfile.seed" "$ctx/Dockerfile.seedfix"
ocib_ok seedlint build --print=lint -f "$ctx/Dockerfile.seed" "$ctx"
grep -q 'Dockerfile.seed:11: stage "frontend" builds FROM "backend" but needs none of its files' "$T/seedlint.out" ||
  fail "lint missed the seed's shape: $(cat "$T/seedlint.out")"
grep -q 'Dockerfile.seed:16: `COPY --from=frontend` copies what "backend" produced: `COPY --from=backend`' "$T/seedlint.out" ||
  fail "lint missed the COPY --from=frontend of backend's file: $(cat "$T/seedlint.out")"
rc=0; ocib_run check1 build --call=check -f "$ctx/Dockerfile.seed" "$ctx" || rc=$?
assert_eq "$rc" 1 "--call=check with warnings"
assert_file_contains "$T/check1.out" "Check complete, 2 warnings have been found!"
ocib_ok check2 build --check -f "$ctx/Dockerfile.parallel" "$ctx"
assert_file_contains "$T/check2.out" "Check complete, no warnings found."
ocib_ok seedfix build --print=lint --fix -f "$ctx/Dockerfile.seedfix" "$ctx"
diff "$ctx/Dockerfile.seed" "$ctx/Dockerfile.seedfix" >"$T/seedfix.diff" || true
assert_eq "$(grep -c '^>' "$T/seedfix.diff")" 2 "lines --fix changed"
grep -qx '> FROM base AS frontend' "$T/seedfix.diff" || fail "--fix did not rebase frontend: $(cat "$T/seedfix.diff")"
grep -qx '> COPY --from=backend /src/backend/server /server' "$T/seedfix.diff" || fail "--fix did not redirect the COPY"
grep -qx '# frontend only needs the tools' "$ctx/Dockerfile.seedfix" || fail "--fix lost a comment"
ocib_ok seedfix2 build --print=lint -f "$ctx/Dockerfile.seedfix" "$ctx"
[[ ! -s $T/seedfix2.out ]] || fail "the fixed Dockerfile still has lint warnings: $(cat "$T/seedfix2.out")"
OCIB_ROOT="$T/seedstore" ocib_ok seedb1 build -f "$ctx/Dockerfile.seed" -o type=local,dest="$T/seed-a" "$ctx"
OCIB_ROOT="$T/seedstore" ocib_ok seedb2 build -f "$ctx/Dockerfile.seedfix" -o type=local,dest="$T/seed-b" "$ctx"
diff -r "$T/seed-a" "$T/seed-b" || fail "the fixed Dockerfile builds different files"

ocib_ok graph build --print=graph -f "$ctx/Dockerfile.serial" "$ctx"
grep -q '^digraph build {' "$T/graph.out" || fail "graph is not DOT"
grep -q 's1 -> s2 \[label=FROM, color=red\]' "$T/graph.out" || fail "critical FROM edge not marked: $(cat "$T/graph.out")"
ocib_ok gj build --print=graph-json -f "$ctx/Dockerfile.parallel" "$ctx"
assert_eq "$(jq -r '.critical_path_steps' "$T/gj.out")" 4 "critical path steps of the parallel shape"
assert_eq "$(jq '[.stages[] | select(.critical)] | length' "$T/gj.out")" 3 "stages on the critical path"
ocib_ok gj2 build --print=graph-json -f "$ctx/Dockerfile.serial" "$ctx"
assert_eq "$(jq -r '.critical_path_steps' "$T/gj2.out")" 5 "critical path steps of the serial shape"
[[ ! -d $OCIB_ROOT/s ]] || [[ -z $(ls "$OCIB_ROOT/s") ]] || fail "--print built something"

# Estimated durations: before a build every step is guessed; after one, the graph carries
# the recorded times (b1's RUN sleeps 2 s) and the critical path's length in seconds.
assert_eq "$(jq '[.stages[] | .recorded_steps] | add' "$T/gj.out")" 0 "recorded steps before any build"
ln -s busybox "$ctx/sh"
ocib_ok real build -f "$ctx/Dockerfile.parallel" "$ctx"
ocib_ok gj3 build --print=graph-json -f "$ctx/Dockerfile.parallel" "$ctx"
b1=$(jq '.stages[] | select(.name == "b1")' "$T/gj3.out")
assert_eq "$(jq .recorded_steps <<<"$b1")" 1 "b1's recorded steps after a build"
jq -e '.estimated_seconds >= 1.9 and .estimated_seconds < 10' <<<"$b1" >/dev/null ||
  fail "b1's estimate is not its recorded ~2 s: $b1"
jq -e '.critical_path_seconds >= 2' "$T/gj3.out" >/dev/null || fail "critical path shorter than b1's RUN: $(jq .critical_path_seconds "$T/gj3.out")"
ocib_ok dot3 build --print=graph -f "$ctx/Dockerfile.parallel" "$ctx"
contains -E 's[0-9]+ \[label="b1\\n1 steps, ~2\.[0-9]s"' "$T/dot3.out" || fail "DOT label lacks b1's recorded estimate: $(cat "$T/dot3.out")"
