#!/usr/bin/env bash
# A failing RUN: non-zero exit, the step and its exit code on stderr, no mount left
# behind, and the store still usable by the next build.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile.bad" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
RUN exit 3

FROM base AS b2
RUN sleep 2 && echo two > /two

FROM base
COPY --from=b1 /bin/busybox /x
COPY --from=b2 /two /two
DF
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
RUN echo fine > /fine

FROM base
COPY --from=b1 /fine /fine
CMD ["/bin/cat","/fine"]
DF

rc=0
ocib_run bad build -f "$ctx/Dockerfile.bad" -t bad:1 -o type=oci,dest="$T/bad.tar" --progress=plain "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "a build with 'RUN exit 3' succeeded"
[[ $rc -eq 1 ]] || { show_err bad; fail "expected exit status 1 for a failed build, got $rc"; }
assert_file_contains "$T/bad.err" "ocib: error:" "stderr of the failed build"
grep -qE '\[b1 [0-9]+/[0-9]+\] RUN exit 3' "$T/bad.err" ||
  { show_err bad; fail "stderr does not name the failing step '[b1 i/n] RUN exit 3'"; }
assert_file_contains "$T/bad.err" "exit code: 3" "stderr of the failed build"
[[ ! -e $T/bad.tar ]] || fail "a failed build left an output archive $T/bad.tar"

# Nothing of ours may stay mounted (the host view and our own mount namespace).
leaked=$(findmnt -rn -o TARGET | grep -F "$T" || true)
[[ -z $leaked ]] || fail "mounts left behind after the failed build: $leaked"
if grep -F "$T" /proc/self/mountinfo >&2; then
  fail "/proc/self/mountinfo still mentions $T after the failed build"
fi
# No stray processes from the build either.
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null || true)
  [[ $exe != "$T/ocib" ]] || fail "ocib process ${p#/proc/} still running after the failed build"
done

# The same store serves a good build afterwards.
ocib_ok good build -t good:1 -o type=oci,dest="$T/good.tar" --progress=plain "$ctx"
skopeo inspect "oci-archive:$T/good.tar" >/dev/null 2>"$T/skopeo.err" ||
  { cat "$T/skopeo.err" >&2; fail "skopeo inspect of the good build failed"; }
leaked=$(findmnt -rn -o TARGET | grep -F "$T" || true)
[[ -z $leaked ]] || fail "mounts left behind after the good build: $leaked"
