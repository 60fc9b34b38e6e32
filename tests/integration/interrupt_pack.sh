#!/usr/bin/env bash
# SIGINT or SIGTERM while ocib packs a big layer: the build stops with 128+signal (130, 143),
# the store keeps no partial blob and no tmp file, and the next build succeeds. As root the
# layer is packed in ocib's process; rootless (subordinate ids) inside the user namespace.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"

# interrupt SIGNAL EXPECTED-STATUS [STORE-DIR]: a fresh store, a build whose last RUN writes
# 400 MiB of random data, and SIGNAL once the layer's tmp file in the store grows (packing
# runs). Runs ocib through "${OCIB_AS[@]}".
interrupt() {
  local sig=$1 want=$2 name=${1,,}${3:+-rootless}
  export OCIB_ROOT="${3:-$T}/store-$name"
  # A first build in the store: a rootless build's first run in a store leaves its snapshot
  # driver probe's directory in tmp/ until the next build (its overlay workdir is mode 000),
  # which is not what this scenario is about.
  printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$ctx/Dockerfile"
  ocib_ok "warm-$name" build "$ctx"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN dd if=/dev/urandom of=/big bs=1M count=400 2>/dev/null && echo $name
DOCKERFILE
  local out="${3:-$T}/$name.tar"
  "${OCIB_AS[@]}" "$OCIB" build --progress=plain -o type=oci,dest="$out" "$ctx" >"$T/$name.log" 2>&1 &
  local job=$! pid _ started=0
  for _ in $(seq 1200); do
    # The big layer's blob being written, over 16 MiB: a tmp file of the store (packed in
    # ocib's process) or the packing sandbox's output (in the user namespace).
    if find "$OCIB_ROOT/tmp" \( -name '*-layer-*' -o -path '*-pack-*/out/layer' \) -type f -size +16M 2>/dev/null |
      contains .; then
      started=1
      break
    fi
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  # ocib itself, the oldest process of its binary: $! is a subshell when OCIB_AS is set (it
  # runs a shell function), and a background subshell ignores SIGINT.
  pid=$(pgrep -o -f -- "^$OCIB build --progress=plain -o type=oci,dest=$out ") || pid=$job
  [[ $started -eq 1 ]] || { cat "$T/$name.log" >&2; fail "$sig: never saw the big layer being packed"; }
  kill -"$sig" "$pid"
  local rc=0
  wait "$job" || rc=$?
  if [[ $rc -ne $want ]]; then
    cat "$T/$name.log" >&2
    fail "$sig during packing: exit status $rc, want $want"
  fi
  assert_file_contains "$T/$name.log" "interrupted" "the log of the build stopped by $sig"
  [[ ! -e $out ]] || fail "$sig: the interrupted build wrote its output"
  local left
  left=$(find "$OCIB_ROOT/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  [[ $left -eq 0 ]] || fail "$sig: the interrupted build left in the store's tmp: $(ls -la "$OCIB_ROOT/tmp")"
  ocib_ok "check-$name" store check
  # The next build (the RUN's snapshot is cached; its layer is packed now) succeeds.
  ocib_ok "next-$name" build -o type=oci,dest="$out.next" "$ctx"
  [[ -s $out.next ]] || fail "$sig: the next build wrote no output"
  left=$(find "$OCIB_ROOT/tmp" -mindepth 1 -maxdepth 1 | wc -l)
  [[ $left -eq 0 ]] || fail "$sig: the next build left in the store's tmp: $(ls "$OCIB_ROOT/tmp")"
  ocib_ok "check-next-$name" store check
  rm -rf "$OCIB_ROOT" "$out.next"
}

interrupt INT 130
interrupt TERM 143

# Rootless: the layer is packed inside the build's user namespace.
if [[ $(id -u) -eq 0 ]] && command -v setpriv useradd unshare >/dev/null; then
  ensure_test_user
  user_area "$IT_USER"
  chmod -R a+rX "$ctx"
  interrupt INT 130 "$T/u"
else
  log "not root: the rootless case is left out"
fi
