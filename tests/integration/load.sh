#!/usr/bin/env bash
# `--load`, as buildx: the image goes into the docker daemon (its API at DOCKER_HOST) or, with
# no daemon, into podman. A private dockerd (Debian's docker.io, its own data root and socket,
# no bridge/iptables) and a private podman store (CONTAINERS_STORAGE_CONF) receive the image;
# each must then list it under the -t name with ocib's config digest as its ID, and docker
# runs it. With neither, --load fails before any work, naming both.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "dockerd needs it"

ctx="$T/ctx"
make_ctx "$ctx"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo loaded > /hello"]\nCMD ["/bin/busybox", "cat", "/hello"]\n' >"$ctx/Dockerfile"

tested=0
if [[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]]; then
  d="$T/dockerd"
  mkdir -p "$d"
  export DOCKER_HOST="unix://$d/docker.sock"
  /usr/sbin/dockerd --data-root "$d/root" --exec-root "$d/exec" --pidfile "$d/pid" --host "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip-masq=false >"$d/log" 2>&1 &
  IT_BG_PIDS+=("$!")
  for _ in $(seq 150); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.2; done
  /usr/bin/docker info >/dev/null 2>&1 || { tail "$d/log" >&2; fail "the private dockerd did not start"; }
  rc=0
  "$OCIB" build --progress=plain --load -t ocib-load-test:1 --iidfile "$T/iid" "$ctx" >"$T/docker.out" 2>"$T/docker.err" || rc=$?
  [[ $rc -eq 0 ]] || { tail "$T/docker.err" >&2; fail "--load into dockerd failed"; }
  contains -F "loading into $DOCKER_HOST" "$T/docker.err" || fail "the build does not say where it loads"
  id=$(/usr/bin/docker image inspect --format '{{.Id}}' ocib-load-test:1) || fail "dockerd does not have ocib-load-test:1"
  assert_eq "$id" "$(cat "$T/iid")" "the loaded image's ID (its config digest)"
  out=$(/usr/bin/docker run --rm --network none ocib-load-test:1 2>&1) || fail "docker run of the loaded image failed: $out"
  assert_eq "$out" "loaded" "docker run of the loaded image"
  # -o type=docker without dest is the same.
  "$OCIB" build -o type=docker -t ocib-load-test:2 "$ctx" >"$T/docker2.out" 2>"$T/docker2.err" || { tail "$T/docker2.err" >&2; fail "-o type=docker (no dest) failed"; }
  /usr/bin/docker image inspect ocib-load-test:2 >/dev/null || fail "-o type=docker did not load ocib-load-test:2"
  unset DOCKER_HOST
  tested=$((tested + 1))
  log "docker: ok"
else
  log "docker.io not installed: the dockerd case is not run"
fi

if command -v podman >/dev/null 2>&1 && [[ ! -S /var/run/docker.sock ]]; then
  p="$T/podman"
  mkdir -p "$p"
  printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$p" "$p" >"$p/storage.conf"
  export CONTAINERS_STORAGE_CONF="$p/storage.conf"
  rc=0
  "$OCIB" build --progress=plain --load -t ocib-load-test:3 --iidfile "$T/iid3" "$ctx" >"$T/podman.out" 2>"$T/podman.err" || rc=$?
  [[ $rc -eq 0 ]] || { tail "$T/podman.err" >&2; fail "--load into podman failed"; }
  contains -F "loading into podman" "$T/podman.err" || fail "the build does not say it loads into podman"
  id=$(podman image inspect --format '{{.Id}}' ocib-load-test:3) || fail "podman does not have ocib-load-test:3"
  assert_eq "sha256:$id" "$(cat "$T/iid3")" "the image ID in podman"
  tested=$((tested + 1))
  log "podman: ok"
else
  log "podman not installed (or a docker socket exists): the podman case is not run"
fi

# Neither: fails at once, naming what is missing.
mkdir -p "$T/path"
for f in /usr/local/bin/* /usr/bin/* /usr/sbin/* /bin/* /sbin/*; do
  n=$(basename "$f")
  [[ $n == podman || -e $T/path/$n ]] || ln -s "$f" "$T/path/$n"
done
if [[ ! -S /var/run/docker.sock ]]; then
  rc=0
  env -u DOCKER_HOST PATH="$T/path" "$OCIB" build --load "$ctx" >"$T/none.out" 2>"$T/none.err" || rc=$?
  [[ $rc -ne 0 ]] || fail "--load with no daemon and no podman succeeded"
  contains -F 'no docker daemon' "$T/none.err" || fail "the error does not name the missing daemon: $(cat "$T/none.err")"
  contains -F 'podman' "$T/none.err" || fail "the error does not name podman"
  if contains -F '#1' "$T/none.err"; then fail "work started before the --load error"; fi
fi
rc=0
DOCKER_HOST="unix://$T/nothere.sock" "$OCIB" build --load "$ctx" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
[[ $rc -ne 0 ]] || fail "--load to a missing DOCKER_HOST socket succeeded"
contains -F 'nothere.sock' "$T/bad.err" || fail "the error does not name DOCKER_HOST"
[[ $tested -gt 0 ]] || skip "neither docker.io nor podman is installed (the error cases passed)"
log PASS
