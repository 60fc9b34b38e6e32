#!/usr/bin/env bash
# `--ssh` and RUN --mount=type=ssh, as buildx and BuildKit: a real ssh-agent holding one key is
# forwarded; a static client in the image asks it for its identities (the agent protocol's
# REQUEST_IDENTITIES) and must get the key. Checked: --ssh default ($SSH_AUTH_SOCK) at BuildKit's
# default target /run/buildkit/ssh_agent.0 with SSH_AUTH_SOCK set; --ssh ID=SOCKET at a given
# target; an optional mount without --ssh is left out, a required one fails naming the id; the
# mountpoint lands in no layer and the socket path in no cache key (another socket, same key);
# --ssh ID=KEY,KEY loads key files into an agent ocib starts and stops (a passphrase-protected
# key is a usage error); bad --ssh values exit 2 before any work; the same under the chroot isolation.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd ssh-agent ssh-add ssh-keygen gcc tar jq

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$T/agentq.c" <<'C'
/* Asks the agent at $SSH_AUTH_SOCK how many identities it holds (SSH2_AGENTC_REQUEST_IDENTITIES). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static int readn(int fd, unsigned char *b, int n) {
  for (int got = 0; got < n;) { int r = read(fd, b + got, n - got); if (r <= 0) return -1; got += r; }
  return 0;
}
int main(void) {
  const char *p = getenv("SSH_AUTH_SOCK");
  if (!p) { puts("no SSH_AUTH_SOCK"); return 2; }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX;
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 3; }
  unsigned char req[5] = {0, 0, 0, 1, 11}, h[9];
  if (write(fd, req, 5) != 5 || readn(fd, h, 9) != 0) { puts("no answer"); return 4; }
  if (h[4] != 12) { printf("unexpected reply %d\n", h[4]); return 5; }
  printf("%s %u\n", p, (unsigned)h[5] << 24 | h[6] << 16 | h[7] << 8 | h[8]);
  return 0;
}
C
gcc -static -O1 -o "$ctx/agentq" "$T/agentq.c" || skip "no static libc to build the agent client (libc6-dev)"
chmod -R a+rX "$ctx"

agent_pid=""
start_agent() { # SOCKET: an agent holding a fresh ed25519 key
  local sock=$1 out
  out=$(ssh-agent -a "$sock" -s)
  IT_BG_PIDS+=("$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\).*/\1/p' <<<"$out")")
  rm -f "$T/key" "$T/key.pub"
  ssh-keygen -q -t ed25519 -N '' -C ocib-test -f "$T/key"
  SSH_AUTH_SOCK=$sock ssh-add -q "$T/key" 2>/dev/null
}
start_agent "$T/agent.sock"
start_agent "$T/agent2.sock"

cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
COPY agentq /bin/agentq
RUN --mount=type=ssh ["/bin/agentq"]
RUN --mount=type=ssh,id=other,target=/other.sock,required ["/bin/busybox", "sh", "-c", "/bin/agentq > /out.txt && /bin/busybox echo \"$SSH_AUTH_SOCK\" > /env.txt"]
DF

for iso in auto chroot; do
  [[ $iso == chroot ]] && ! command -v proot >/dev/null && { log "no proot: chroot case skipped"; continue; }
  export OCIB_ROOT="$T/store-$iso"
  rc=0
  SSH_AUTH_SOCK="$T/agent.sock" OCIB_ISOLATION=$iso "$OCIB" build --progress=plain --ssh default --ssh other="$T/agent.sock" \
    -o type=oci,dest="$T/img-$iso.tar" "$ctx" >"$T/b-$iso.out" 2>"$T/b-$iso.err" || rc=$?
  [[ $rc -eq 0 ]] || { tail -20 "$T/b-$iso.err" >&2; fail "$iso: build with --ssh failed"; }
  contains -F '/run/buildkit/ssh_agent.0 1' "$T/b-$iso.err" || fail "$iso: the default ssh mount did not reach the agent's key at /run/buildkit/ssh_agent.0: $(grep -F '#' "$T/b-$iso.err" | tail -5)"
  mkdir -p "$T/img-$iso"
  tar -xf "$T/img-$iso.tar" -C "$T/img-$iso"
  m=$(jq -r '.manifests[0].digest' "$T/img-$iso/index.json")
  : >"$T/list-$iso"
  for l in $(jq -r '.layers[].digest' "$T/img-$iso/blobs/sha256/${m#sha256:}"); do
    tar -tvf "$T/img-$iso/blobs/sha256/${l#sha256:}" >>"$T/list-$iso"
    tar -xf "$T/img-$iso/blobs/sha256/${l#sha256:}" -C "$T/img-$iso" 2>/dev/null || true
  done
  assert_eq "$(cat "$T/img-$iso/out.txt")" "/other.sock 1" "$iso: the agent through id=other at target=/other.sock"
  assert_eq "$(cat "$T/img-$iso/env.txt")" "/other.sock" "$iso: SSH_AUTH_SOCK in the step"
  if contains -E 'run/buildkit|other\.sock|ssh_agent' "$T/list-$iso"; then fail "$iso: an ssh mountpoint is in a layer: $(cat "$T/list-$iso")"; fi
  log "$iso: ok"
done

# The socket is not an input: another agent for the same ids keeps every step cached.
export OCIB_ROOT="$T/store-auto"
SSH_AUTH_SOCK="$T/agent2.sock" "$OCIB" build --progress=plain --ssh default --ssh other="$T/agent2.sock" \
  -o type=oci,dest="$T/again.tar" "$ctx" >"$T/again.out" 2>"$T/again.err" || { tail "$T/again.err" >&2; fail "rebuild failed"; }
if contains -F 'ssh_agent.0 1' "$T/again.err"; then fail "another agent socket re-ran the ssh step (the socket path is in its key)"; fi
contains -F 'CACHED' "$T/again.err" || fail "the rebuild with another agent socket was not cached"

# Without --ssh: an optional mount is left out, a required one fails naming the id.
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=ssh ["/bin/busybox", "sh", "-c", "test -z \\"$SSH_AUTH_SOCK\\" && echo none > /n"]\n' >"$ctx/Dockerfile.opt"
env -u SSH_AUTH_SOCK "$OCIB" build -f "$ctx/Dockerfile.opt" "$ctx" >"$T/opt.out" 2>"$T/opt.err" || { tail "$T/opt.err" >&2; fail "an optional ssh mount without --ssh failed the build"; }
rc=0
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=ssh,id=other,required ["/bin/busybox", "true"]\n' >"$ctx/Dockerfile.req"
env -u SSH_AUTH_SOCK "$OCIB" build -f "$ctx/Dockerfile.req" "$ctx" >"$T/req.out" 2>"$T/req.err" || rc=$?
[[ $rc -ne 0 ]] || fail "a required ssh mount without --ssh built"
contains -F 'no SSH key "other" forwarded' "$T/req.err" || fail "the missing required ssh id is not named: $(tail -3 "$T/req.err")"

# Key files (buildx's ID=KEY[,KEY]): ocib loads them into an agent of its own for the build;
# the step sees one agent holding both keys, and the agent is gone afterwards.
ssh-keygen -q -t ed25519 -N '' -C ocib-test-2 -f "$T/key2"
ssh-keygen -q -t ed25519 -N 'secret' -C ocib-test-3 -f "$T/key3"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY agentq /bin/agentq\nRUN --mount=type=ssh,id=k,required ["/bin/busybox", "sh", "-c", "/bin/agentq > /keys.txt"]\n' >"$ctx/Dockerfile.keys"
env -u SSH_AUTH_SOCK "$OCIB" build --ssh k="$T/key,$T/key2" -f "$ctx/Dockerfile.keys" -o type=local,dest="$T/keys-fs" "$ctx" \
  >"$T/keys.out" 2>"$T/keys.err" || { tail "$T/keys.err" >&2; fail "--ssh ID=KEY,KEY failed"; }
assert_eq "$(cut -d' ' -f2 "$T/keys-fs/keys.txt")" 2 "keys in the agent ocib started for --ssh k=KEY,KEY"
if pgrep -f "ocib-ssh-.*/agent.sock" >/dev/null; then fail "the build's ssh-agent outlived the build"; fi
rc=0
env -u SSH_AUTH_SOCK "$OCIB" build --ssh k="$T/key3" -f "$ctx/Dockerfile.keys" "$ctx" >"$T/k3.out" 2>"$T/k3.err" || rc=$?
assert_eq "$rc" 2 "exit status of --ssh with a passphrase-protected key"
contains -F 'passphrase' "$T/k3.err" || fail "a passphrase-protected key is not explained: $(cat "$T/k3.err")"
if contains -F '#1' "$T/k3.err"; then fail "--ssh with an unusable key: work started before the error"; fi

# Bad values: exit 2 before any work.
mkdir -p "$T/adir"
for bad in "default" "x=$T/nothere" "x=$T/adir" "x=$T/agent.sock,$T/key" "x=$T/key,"; do
  rc=0
  env -u SSH_AUTH_SOCK "$OCIB" build --ssh "$bad" "$ctx" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  assert_eq "$rc" 2 "exit status of --ssh $bad"
  if contains -F '#1' "$T/bad.err"; then fail "--ssh $bad: work started before the usage error"; fi
done
log PASS
