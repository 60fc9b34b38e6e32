#!/usr/bin/env bash
# RUN's network modes (issue 18): without flags a RUN gets a network namespace of its own with
# an interface besides lo and a default route (slirp4netns), its resolv.conf names the stack's
# resolver, and a TCP server on the host's 127.0.0.1 is unreachable from it (slirp4netns runs
# with --disable-host-loopback: checked on its command line during a sleeping step). Also as
# the unprivileged ocib-test user. --network=none: only lo. slirp4netns hidden from PATH: one
# warning naming the package, and the steps fall back to the host's network. --network=host
# without --allow network.host: a warning. Probes nothing but the test's loopback server.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3 curl
command -v slirp4netns >/dev/null 2>&1 || skip "slirp4netns missing (apt-get install slirp4netns)"

mkdir -p "$T/www" && echo "reached" >"$T/www/index.html"
start_http "$T/www"
port=$HTTP_PORT

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<DF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG NONCE=0
RUN mkdir /r && echo \$NONCE > /r/nonce && cat /proc/net/dev > /r/netdev && cat /proc/net/route > /r/route \\
 && readlink /proc/self/ns/net > /r/netns && cp /etc/resolv.conf /r/resolv \\
 && ( (printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 $port 2>/r/nc.err | head -1 | grep -q '200 OK') && echo reached || echo unreachable) > /r/loopback
DF
chmod -R a+rX "$ctx"

ifaces() { tail -n +3 "$1/r/netdev" | awk -F: '{gsub(/ /, "", $1); print $1}' | sort | tr '\n' ' '; }
host_netns=$(readlink /proc/self/ns/net)

check_default() { # LABEL FS
  local who=$1 fs=$2
  local i
  i=$(ifaces "$fs")
  [[ $i == *lo* && $(wc -w <<<"$i") -ge 2 ]] || fail "$who: interfaces in a default-network RUN: '$i' (expected lo and another)"
  awk 'NR > 1 && $2 == "00000000" { found = 1 } END { exit !found }' "$fs/r/route" || {
    cat "$fs/r/route" >&2
    fail "$who: no default route in /proc/net/route of the RUN"
  }
  [[ $(cat "$fs/r/netns") != "$host_netns" ]] || fail "$who: the RUN shares the host's network namespace $host_netns"
  assert_eq "$(grep nameserver "$fs/r/resolv")" "nameserver 10.0.2.3" "$who: the step's resolv.conf"
  assert_eq "$(cat "$fs/r/loopback")" "unreachable" "$who: the host's 127.0.0.1:$port from a default-network RUN"
}

# ---- (1) no flags: own netns through slirp4netns, the host's loopback unreachable -----------
ocib_ok def build --progress=plain -o type=local,dest="$T/def" "$ctx"
check_default root "$T/def"
if contains -i 'warning' "$T/def.err"; then show_err def; fail "a default-network build warned"; fi

# ---- (3) --network=none: only lo ------------------------------------------------------------
ocib_ok none build --network=none --progress=plain -o type=local,dest="$T/none" "$ctx"
assert_eq "$(ifaces "$T/none")" "lo " "interfaces with --network=none"
assert_eq "$(cat "$T/none/r/loopback")" "unreachable" "the host's loopback with --network=none"
assert_eq "$(grep -c nameserver "$T/none/r/resolv" || true)" "0" "nameservers with --network=none"

# ---- the stack is started with a build that will run a RUN (while its first steps run), and a
# no-op rebuild starts none ---------------------------------------------------------------------
nonce="warm-$$-$RANDOM"
OCIB_DEBUG=1 ocib_ok warm1 build --build-arg NONCE="$nonce" --progress=plain -o type=local,dest="$T/warm1" "$ctx"
assert_eq "$(grep -c 'default network: .* started' "$T/warm1.err" || true)" "1" "network stacks started by a build with an uncached RUN"
check_default "root (stack started early)" "$T/warm1"
OCIB_DEBUG=1 ocib_ok warm2 build --build-arg NONCE="$nonce" --progress=plain -o type=local,dest="$T/warm2" "$ctx"
contains 'CACHED' "$T/warm2.err" || { show_err warm2; fail "the rebuild was not cached"; }
assert_eq "$(grep -c 'default network: .* started' "$T/warm2.err" || true)" "0" "network stacks started by a no-op rebuild"

# ---- the stack's command line, seen during a sleeping step -----------------------------------
cat >"$ctx/Dockerfile.sleep" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sleep", "4"]
DF
"$OCIB" build --progress=plain -f "$ctx/Dockerfile.sleep" -o type=local,dest="$T/sleep" "$ctx" >"$T/sleep.out" 2>"$T/sleep.err" &
bpid=$!
IT_BG_PIDS+=("$bpid")
cmdline=
for _ in $(seq 80); do
  for d in /proc/[0-9]*; do
    [[ $(awk '/^PPid:/ { print $2 }' "$d/status" 2>/dev/null) == "$bpid" ]] || continue
    c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    if [[ $c == *slirp4netns* ]]; then cmdline=$c; break 2; fi
  done
  sleep 0.1
done
wait "$bpid" || { show_err sleep; fail "the sleeping build failed"; }
[[ -n $cmdline ]] || fail "no slirp4netns child of ocib seen during the sleeping RUN"
log "stack: $cmdline"
[[ $cmdline == *--disable-host-loopback* ]] || fail "slirp4netns runs without --disable-host-loopback: $cmdline"
[[ $cmdline == *--configure* ]] || fail "slirp4netns runs without --configure: $cmdline"
# One stack serves the build's default-network steps (as rootless BuildKit's one slirp4netns),
# and it goes when ocib does.
[[ $cmdline == *--exit-fd=* ]] || fail "slirp4netns is not tied to ocib's lifetime (--exit-fd): $cmdline"
sleep 0.3
for d in /proc/[0-9]*; do
  [[ $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) == "$cmdline" ]] && fail "slirp4netns outlived the build: $d"
done

# ---- (4) slirp4netns hidden from PATH: one warning, the host's network -----------------------
mkdir -p "$T/bin"
for f in /usr/local/sbin/* /usr/local/bin/* /usr/sbin/* /usr/bin/* /sbin/* /bin/*; do
  b=${f##*/}
  [[ $b == slirp4netns || -e $T/bin/$b ]] && continue
  ln -s "$f" "$T/bin/$b"
done
OCIB_AS=(env PATH="$T/bin")
ocib_ok hidden build --progress=plain --build-arg NONCE=1 -o type=local,dest="$T/hidden" "$ctx"
OCIB_AS=()
assert_file_contains "$T/hidden.err" "install the slirp4netns package" "the warning without slirp4netns"
assert_eq "$(grep -c 'slirp4netns is not installed' "$T/hidden.err")" "1" "warnings without slirp4netns"
assert_eq "$(cat "$T/hidden/r/netns")" "$host_netns" "network namespace of the fallback (the host's)"
assert_eq "$(cat "$T/hidden/r/loopback")" "reached" "the host's loopback with the host-network fallback"

# ---- --network=host: a warning without --allow network.host, none with it ---------------------
ocib_ok host build --network=host --progress=plain --build-arg NONCE=2 -o type=local,dest="$T/host" "$ctx"
assert_file_contains "$T/host.err" "--allow network.host" "the warning of --network=host without the entitlement"
assert_eq "$(cat "$T/host/r/loopback")" "reached" "the host's loopback with --network=host"
ocib_ok host2 build --network=host --allow network.host --progress=plain --build-arg NONCE=3 -o type=local,dest="$T/host2" "$ctx"
if contains 'network.host' "$T/host2.err"; then show_err host2; fail "--allow network.host still warned"; fi

# ---- (1) again as the unprivileged user -------------------------------------------------------
if [[ $(id -u) -eq 0 ]]; then
  ensure_test_user
  user_area "$IT_USER"
  tun_mode=$(stat -c %a /dev/net/tun)
  if ! as_user "$IT_USER" sh -c ': <>/dev/net/tun' 2>/dev/null; then
    # Some machines (containers) keep /dev/net/tun 0600: then the user's builds fall back to
    # the host's network, saying why; afterwards the Debian default 0666 for the real test.
    ocib_ok utun build --progress=plain --build-arg NONCE=4 -o type=local,dest="$T/u/tun" "$ctx"
    assert_file_contains "$T/utun.err" "cannot open /dev/net/tun" "$IT_USER: the warning without a usable /dev/net/tun"
    assert_eq "$(cat "$T/u/tun/r/loopback")" "reached" "$IT_USER: the host's loopback with the fallback"
    log "/dev/net/tun is $tun_mode: 0666 (Debian's udev default) for the rootless pass"
    chmod 0666 /dev/net/tun
  fi
  rc=0
  ocib_run udef build --progress=plain -o type=local,dest="$T/u/def" "$ctx" || rc=$?
  chmod "$tun_mode" /dev/net/tun
  [[ $rc -eq 0 ]] || { show_err udef; fail "rootless default-network build exited with status $rc"; }
  check_default "$IT_USER" "$T/u/def"
  if contains -i 'warning' "$T/udef.err"; then show_err udef; fail "a rootless default-network build warned"; fi
else
  log "not root: the rootless pass (as $IT_USER) is skipped"
fi
