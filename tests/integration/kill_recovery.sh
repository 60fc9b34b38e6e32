#!/usr/bin/env bash
# Killing ocib (SIGKILL) in the middle of a long RUN: no process of the step and no mount stay
# behind, the store holds no half-written entry for the step, and the next build succeeds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
marker="ocib-kill-marker-$$"
# A sleep length no other process on the machine is likely to use (pgrep matches by command
# line: a plain "sleep 300" elsewhere would look like a survivor).
dur=$((20000 + $$ % 9973))
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN sleep $dur && echo $marker > /never
DOCKERFILE
export OCIB_ROOT="$T/store"
"$OCIB" build --progress=plain -o type=oci,dest="$T/a.tar" "$ctx" >"$T/kill.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  grep -q "RUN sleep $dur" "$T/kill.log" 2>/dev/null && pgrep -f "sleep $dur" >/dev/null && break
  sleep 0.1
done
pgrep -f "sleep $dur" >/dev/null || { cat "$T/kill.log" >&2; fail "the long RUN never started"; }
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
# PR_SET_PDEATHSIG takes the step down with ocib; give the kernel a moment.
for _ in $(seq 50); do
  pgrep -f "sleep $dur" >/dev/null || break
  sleep 0.1
done
if pgrep -f "sleep $dur" >/dev/null; then fail "the step's processes survived: $(pgrep -af "sleep $dur")"; fi
if grep -F "$T" /proc/self/mountinfo >/dev/null; then fail "mounts left: $(grep -F "$T" /proc/self/mountinfo)"; fi
if findmnt -rn -o TARGET | contains -F "$T"; then fail "findmnt shows mounts under $T"; fi
# No cache entry claims the killed step.
if grep -lr "$marker" "$OCIB_ROOT/cache" 2>/dev/null | contains .; then fail "a cache entry exists for the killed step"; fi

# The next build cleans the dead build's staging and succeeds.
sed -i "s/sleep $dur && //" "$ctx/Dockerfile"
ocib_ok next build -o type=oci,dest="$T/b.tar" "$ctx"
left=$(find "$OCIB_ROOT/tmp" -mindepth 1 -maxdepth 1 | wc -l)
[[ $left -eq 0 ]] || fail "staging of the killed build was not cleaned: $(ls "$OCIB_ROOT/tmp")"
ocib_ok check store check
