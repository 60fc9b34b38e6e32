#!/usr/bin/env bash
# Hostile RUN steps, contexts and base images (tests/hostile/steps) that try to reach the host,
# as root and as an unprivileged user with a subuid range. Every case has a host-side canary
# directory ($H) the attack aims at; nothing there may change, and what the step sees must be
# what BuildKit shows (its own root, never the host's).
#   tty      the caller's terminal: /dev/tty and TIOCSTI (ocib runs under script(1), a pty)
#   bindsym  RUN --mount=type=bind,from=STAGE,source=SYMLINK/... (read, rw, insecure remount)
#   workdir  WORKDIR through a symlink to a host path; a base image whose WorkingDir does it
#   api      a base image whose /proc or /dev is a symlink to a host path
#   stubs    a step that swaps a mountpoint's parent for a symlink to the host before cleanup
#   ignore   RUN --mount=type=bind of the context hides .dockerignore'd files
#   secret   --secret values never touch the disk (also after SIGKILL)
#   runlink  with /run a symlink, a secret's mountpoint does not land in the layer
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd script gcc python3
hostile="$(cd "$(dirname "$0")/../hostile/steps" && pwd)"

gcc -static -O2 -o "$T/tty_probe" "$hostile/tty_probe.c" 2>"$T/gcc.err" ||
  skip "cannot build a static probe (gcc -static: $(head -c 300 "$T/gcc.err"))"

# run_cases MODE: MODE is root or rootless (then OCIB_AS runs ocib as $IT_USER).
run_cases() {
  local mode=$1
  local W="$T/$mode" H="$T/$mode/host"
  mkdir -p "$W" "$H"
  local ctx="$W/ctx"
  make_ctx "$ctx"
  cp "$T/tty_probe" "$ctx/tty_probe"
  echo "host-canary-$mode" >"$H/canary"
  local secret="s3cr3t-$mode-$RANDOM$RANDOM"
  printf '%s' "$secret" >"$W/secret.txt"
  [[ $mode == root ]] || chown -R "$IT_USER:" "$W"
  chmod -R a+rX "$ctx"
  local base='FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]'

  # --- tty: under a pty the step must not get the caller's terminal -----------------------
  cat >"$ctx/Dockerfile.tty" <<DF
$base
FROM base
COPY tty_probe /tty_probe
RUN /tty_probe > /tty.txt
DF
  local cmd
  cmd=$(printf '%q ' "${OCIB_AS[@]}" "$OCIB" build --progress=plain -f "$ctx/Dockerfile.tty" \
    -o "type=local,dest=$W/tty" "$ctx")
  log "run (under a pty): ocib build -f Dockerfile.tty"
  export -f as_user
  export T OCIB_ROOT
  SHELL=/bin/bash script -qec "$cmd" /dev/null >"$W/tty.log" 2>&1 </dev/null || { cat "$W/tty.log" >&2; fail "$mode: tty build failed"; }
  log "$mode: tty probe: $(tr '\n' ';' <"$W/tty/tty.txt")"
  contains -F 'open /dev/tty: No such device or address' "$W/tty/tty.txt" ||
    fail "$mode: a RUN step opened the caller's terminal: $(cat "$W/tty/tty.txt")"
  if contains -E 'TIOCSTI.*: ok' "$W/tty/tty.txt"; then
    fail "$mode: a RUN step could type into the caller's terminal (TIOCSTI): $(cat "$W/tty/tty.txt")"
  fi

  # --- bindsym: a symlink in a stage names the stage's own path ----------------------------
  cat >"$ctx/Dockerfile.bindsym" <<DF
$base
FROM base AS evil
RUN ln -s / /host && mkdir -p $H && echo stage-copy > $H/canary
FROM base
RUN --mount=type=bind,from=evil,source=host$H,target=/x cat /x/canary > /read.txt
RUN --mount=type=bind,from=evil,source=host$H,target=/x,rw sh -c 'echo pwned > /x/canary; mkdir /x/pwned-rw'
RUN --security=insecure --mount=type=bind,from=evil,source=host$H,target=/x sh -c 'mount -o remount,rw /x; echo pwned > /x/canary; mkdir /x/pwned-insecure; true'
RUN --mount=type=bind,from=evil,source=host$H,target=/x cat /x/canary > /read-after.txt
DF
  ocib_ok "$mode-bindsym" build --allow security.insecure -f "$ctx/Dockerfile.bindsym" \
    -o "type=local,dest=$W/bindsym" "$ctx"
  assert_eq "$(cat "$W/bindsym/read.txt")" "stage-copy" "$mode: file read through a stage's /host symlink"
  assert_eq "$(cat "$W/bindsym/read-after.txt")" "stage-copy" "$mode: the stage's file after rw and insecure mounts"
  assert_eq "$(cat "$H/canary")" "host-canary-$mode" "$mode: host canary after bind mounts through a stage symlink"
  [[ ! -e $H/pwned-rw && ! -e $H/pwned-insecure ]] || fail "$mode: a bind mount from a stage wrote into the host directory"

  # --- workdir: through a symlink of a step, and from a base image's config ----------------
  cat >"$ctx/Dockerfile.workdir" <<DF
$base
FROM base
RUN mkdir -p $H && ln -s $H /w
WORKDIR /w/newdir
RUN pwd > /pwd.txt && touch made-here
DF
  ocib_ok "$mode-workdir" build -f "$ctx/Dockerfile.workdir" -o "type=local,dest=$W/workdir" "$ctx"
  [[ ! -e $H/newdir ]] || fail "$mode: WORKDIR through a symlink created $H/newdir on the host"
  [[ -e "$W/workdir$H/newdir/made-here" ]] || fail "$mode: the working directory is not inside the image at $H/newdir"
  for c in workdir proc dev; do
    python3 "$hostile/gen_image.py" "$W/img-$c" "$c" "$H"
    [[ $mode == root ]] || chown -R "$IT_USER:" "$W/img-$c"
  done
  printf 'FROM hostile\nRUN echo ran > /ran.txt\n' >"$ctx/Dockerfile.img"
  ocib_ok "$mode-imgwd" build --build-context "hostile=oci-layout://$W/img-workdir" \
    -f "$ctx/Dockerfile.img" -o "type=local,dest=$W/imgwd" "$ctx"
  [[ ! -e $H/from-config ]] || fail "$mode: a base image's WorkingDir created $H/from-config on the host"
  [[ -d "$W/imgwd$H/from-config" ]] || fail "$mode: the config's WorkingDir was not created inside the image"

  # --- api: /proc or /dev a symlink in the image -------------------------------------------
  for c in proc dev; do
    local rc=0
    ocib_run "$mode-api-$c" build --build-context "hostile=oci-layout://$W/img-$c" \
      -f "$ctx/Dockerfile.img" -o "type=local,dest=$W/api-$c" "$ctx" || rc=$?
    [[ $rc -ne 0 ]] || fail "$mode: a base image with /$c -> host dir built"
    contains -F '/proc, /dev and /sys are directories' "$T/$mode-api-$c.err" ||
      fail "$mode: /$c symlink refused without saying why: $(tail -5 "$T/$mode-api-$c.err")"
    [[ -z $(ls -A "$H" | grep -v -x -e canary -e newdir-none) ]] ||
      fail "$mode: /$c symlink image left entries in $H: $(ls -A "$H")"
  done

  # --- stubs: mountpoint parents swapped for host symlinks before cleanup ------------------
  mkdir -p "$H/b/c" "$H/g"
  : >"$H/g/s"
  [[ $mode == root ]] || chown -R "$IT_USER:" "$H"
  cat >"$ctx/Dockerfile.stubs" <<DF
$base
FROM base
RUN --mount=type=tmpfs,target=/a/b/c sh -c 'mv /a /a2 && ln -s $H /a'
RUN --mount=type=secret,id=s,target=/f/g/s sh -c 'mv /f /f2 && ln -s $H /f'
DF
  ocib_ok "$mode-stubs" build --secret "id=s,src=$W/secret.txt" -f "$ctx/Dockerfile.stubs" \
    -o "type=local,dest=$W/stubs" "$ctx"
  [[ -d $H/b/c ]] || fail "$mode: stub cleanup removed the host directory $H/b/c through a step's symlink"
  [[ -f $H/g/s ]] || fail "$mode: stub cleanup removed the host file $H/g/s through a step's symlink"

  # --- ignore: the context bind hides .dockerignore'd files --------------------------------
  mkdir -p "$ctx/.git" "$ctx/sub"
  echo key >"$ctx/secret.key"
  echo cfg >"$ctx/.git/config"
  echo keep >"$ctx/sub/keep.txt"
  echo drop >"$ctx/sub/drop.log"
  printf 'secret.key\n.git\n**/*.log\n' >"$ctx/.dockerignore"
  [[ $mode == root ]] || chown -R "$IT_USER:" "$ctx"
  chmod -R a+rX "$ctx"
  cat >"$ctx/Dockerfile.ignore" <<DF
$base
FROM base
RUN --mount=type=bind,target=/ctx sh -c 'ls -a /ctx /ctx/sub > /ls.txt; cat /ctx/sub/keep.txt > /keep.txt'
RUN --mount=type=bind,source=sub,target=/sub,rw sh -c 'ls -a /sub > /ls-sub.txt'
DF
  ocib_ok "$mode-ignore" build -f "$ctx/Dockerfile.ignore" -o "type=local,dest=$W/ignore" "$ctx"
  assert_eq "$(cat "$W/ignore/keep.txt")" "keep" "$mode: a kept file through the context bind"
  for gone in secret.key .git drop.log; do
    if contains -x -F "$gone" "$W/ignore/ls.txt" "$W/ignore/ls-sub.txt"; then
      fail "$mode: .dockerignore'd $gone visible in a RUN --mount=type=bind of the context: $(tr '\n' ' ' <"$W/ignore/ls.txt")"
    fi
  done
  contains -x -F Dockerfile.ignore "$W/ignore/ls.txt" || fail "$mode: context bind lost a kept file: $(cat "$W/ignore/ls.txt")"
  rm -rf "$ctx/.git" "$ctx/sub" "$ctx/secret.key" "$ctx/.dockerignore"

  # --- secret: never on disk, not even after SIGKILL ---------------------------------------
  cat >"$ctx/Dockerfile.secret" <<DF
$base
FROM base
RUN --mount=type=secret,id=s sh -c 'cat /run/secrets/s > /dev/null && touch /started-marker && sleep 30'
DF
  log "run: ocib build -f Dockerfile.secret (killed while the step sleeps)"
  "${OCIB_AS[@]}" "$OCIB" build --no-cache --secret "id=s,src=$W/secret.txt" -f "$ctx/Dockerfile.secret" \
    "$ctx" >"$W/secret.out" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 100; i++)); do
    [[ -n $(find "$OCIB_ROOT" -name started-marker 2>/dev/null | head -1) ]] && break
    sleep 0.2
  done
  ((i < 100)) || { cat "$W/secret.out" >&2; fail "$mode: the secret step never started"; }
  if grep -rlF "$secret" "$OCIB_ROOT" >"$W/secret.found" 2>/dev/null; then
    fail "$mode: the secret's value is on disk during the step: $(cat "$W/secret.found")"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 0.5
  if grep -rlF "$secret" "$OCIB_ROOT" >"$W/secret.found" 2>/dev/null; then
    fail "$mode: the secret's value is on disk after SIGKILL: $(cat "$W/secret.found")"
  fi

  # --- runlink: /run a symlink; the secret's mountpoint stays out of the layer -------------
  cat >"$ctx/Dockerfile.runlink" <<DF
$base
FROM base
RUN mkdir -p /var/run && ln -s /var/run /run
RUN --mount=type=secret,id=s cat /run/secrets/s > /seen.txt
DF
  ocib_ok "$mode-runlink" build --secret "id=s,src=$W/secret.txt" -f "$ctx/Dockerfile.runlink" \
    -o "type=local,dest=$W/runlink" "$ctx"
  assert_eq "$(cat "$W/runlink/seen.txt")" "$secret" "$mode: the secret read through /run -> /var/run"
  [[ ! -e $W/runlink/var/run/secrets ]] ||
    fail "$mode: the secret's mountpoint landed in the layer: $(find "$W/runlink/var/run")"
  # Nothing of all this changed the host directory.
  assert_eq "$(cat "$H/canary")" "host-canary-$mode" "$mode: host canary at the end"
  log "$mode: all hostile step cases held"
}

run_cases root
ensure_test_user
user_area "$IT_USER"
run_cases rootless
log PASS
