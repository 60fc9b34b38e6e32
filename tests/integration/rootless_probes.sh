#!/usr/bin/env bash
# Issue #5's isolation probes, read from inside RUN by an unprivileged user created for the
# test, once with a subordinate id range (newuidmap) and once without (single-id mapping):
# id, uid_map, Seccomp 2, Docker's CapEff, /proc/kcore unreadable, unshare and mount refused,
# chown to 1000:1000 recorded in the layer (range only), and the network: --network=none
# cannot reach a loopback server the test started, --network=host can.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
ensure_test_user
need_cmd python3 tar
[[ -x /usr/bin/newuidmap ]] || skip "newuidmap missing (apt-get install uidmap)"

nosub=ocib-test-nosub
if ! id "$nosub" >/dev/null 2>&1; then
  useradd -r -U -M -d /nonexistent -s /usr/sbin/nologin "$nosub" || fail "useradd $nosub failed"
fi
for f in /etc/subuid /etc/subgid; do sed -i "/^$nosub:/d" "$f" 2>/dev/null || true; done

# A loopback HTTP server on the host side.
mkdir -p "$T/www" && echo "reached" >"$T/www/index.html"
start_http "$T/www"
port=$HTTP_PORT

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<DF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /p /mnt && id > /p/id && cat /proc/self/uid_map > /p/uid_map \\
 && grep Seccomp: /proc/self/status > /p/seccomp && grep CapEff: /proc/self/status > /p/capeff \\
 && (head -c 16 /proc/kcore > /p/kcore 2>/p/kcore.err; echo \$? > /p/kcore.rc) \\
 && (unshare -U true 2>/dev/null && echo allowed || echo refused) > /p/unshare \\
 && (mount -t tmpfs x /mnt 2>/dev/null && echo allowed || echo refused) > /p/mount \\
 && ( (printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 $port 2>/p/net.err | head -1 | grep -q '200 OK') && echo reached || echo unreachable) > /p/net.result
ARG CHOWN=0
RUN if [ "\$CHOWN" = 1 ]; then echo x > /owned && chown 1000:1000 /owned; fi
DF

# Docker's default capability set for root in the step, as a CapEff mask.
docker_caps=00000000a80425fb

probe() { # USER LABEL CHOWN NETWORK
  local u=$1 label=$2 chown=$3 net=$4
  rm -rf "$T/u"
  user_area "$u"
  ocib_ok "$label" build --network="$net" --build-arg CHOWN="$chown" -o type=oci,dest="$T/u/out.tar" "$ctx"
  rm -rf "$T/$label.x" && mkdir -p "$T/$label.x" && tar -xf "$T/u/out.tar" -C "$T/$label.x"
  # Every layer, unpacked in order (no whiteouts to apply in this image).
  mkdir -p "$T/$label.fs"
  local m
  m=$(jq -r '.manifests[0].digest' "$T/$label.x/index.json" | sed 's/:/\//')
  jq -r '.layers[].digest' "$T/$label.x/blobs/$m" | sed 's/:/\//' | while read -r l; do
    tar -xzf "$T/$label.x/blobs/$l" -C "$T/$label.fs" --no-same-owner 2>/dev/null || tar -xf "$T/$label.x/blobs/$l" -C "$T/$label.fs" --no-same-owner
  done
}
check_common() { # LABEL UID
  local fs="$T/$1.fs/p"
  assert_eq "$(awk '{print $1, $2, $3}' <(head -n1 "$fs/uid_map"))" "0 $2 1" "$1: first uid_map line"
  contains -E '^uid=0(\(root\))? gid=0' "$fs/id" || fail "$1: id in RUN: $(cat "$fs/id")"
  assert_eq "$(awk '{print $2}' "$fs/seccomp")" "2" "$1: Seccomp"
  assert_eq "$(awk '{print $2}' "$fs/capeff")" "$docker_caps" "$1: CapEff (Docker's default set)"
  [[ $(cat "$fs/kcore.rc") != 0 || ! -s $fs/kcore ]] || fail "$1: /proc/kcore was readable in RUN"
  assert_eq "$(cat "$fs/unshare")" "refused" "$1: unshare -U true"
  assert_eq "$(cat "$fs/mount")" "refused" "$1: mount -t tmpfs"
}

# With a subordinate range: chown to 1000:1000 is recorded as such in the layer.
probe "$IT_USER" sub 1 none
check_common sub "$(id -u "$IT_USER")"
assert_eq "$(wc -l <"$T/sub.fs/p/uid_map" | tr -d ' ')" "2" "sub: uid_map lines (caller + range)"
assert_eq "$(cat "$T/sub.fs/p/net.result")" "unreachable" "sub: --network=none reaching the host's loopback server"
assert_file_contains "$T/sub.fs/p/net.err" "refused" "sub: nc's error under --network=none"
owner=$(for l in $(jq -r '.layers[].digest' "$T/sub.x/blobs/$(jq -r '.manifests[0].digest' "$T/sub.x/index.json" | sed 's/:/\//')" | sed 's/:/\//'); do
  tar -tvzf "$T/sub.x/blobs/$l" --numeric-owner 2>/dev/null | awk '$NF == "owned" {print $2}'; done)
assert_eq "$owner" "1000/1000" "owner of the chowned file in the layer"

# Without a range (single-id mapping): the same probes, no chown; host network reaches it.
probe "$nosub" nosub 0 host
check_common nosub "$(id -u "$nosub")"
assert_eq "$(wc -l <"$T/nosub.fs/p/uid_map" | tr -d ' ')" "1" "nosub: uid_map lines (single id)"
assert_eq "$(cat "$T/nosub.fs/p/net.result")" "reached" "nosub: --network=host reaching the host's loopback server"
