#!/usr/bin/env bash
# Inside a CI container with Docker's default seccomp profile, creating a user namespace is
# refused (unshare and clone with namespace flags get EPERM without CAP_SYS_ADMIN). Reproduced
# with a seccomp filter that refuses unshare(2) with EPERM, installed by python3 before it
# execs ocib: the build must fail at once with a message that names the cause (seccomp, not
# the snapshot drivers) and the change to make (seccomp=unconfined / the pod's
# seccompProfile) when proot is missing, and `ocib info` must say the same; with proot the build
# takes the chroot rung, saying so.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3
[[ $(uname -m) == x86_64 ]] || skip "the seccomp filter below is written for x86_64 syscall numbers"

ctx="$T/ctx"
make_ctx "$ctx"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$ctx/Dockerfile"
cat >"$T/deny_unshare.py" <<'PY'
import ctypes, os, struct, sys
# BPF: on x86_64, unshare (272) -> EPERM; everything else allowed.
prog = [
    (0x20, 0, 0, 4),           # ld [4]: arch
    (0x15, 0, 3, 0xC000003E),  # jeq AUDIT_ARCH_X86_64
    (0x20, 0, 0, 0),           # ld [0]: nr
    (0x15, 0, 1, 272),         # jeq unshare
    (0x06, 0, 0, 0x00050001),  # ret ERRNO(EPERM)
    (0x06, 0, 0, 0x7FFF0000),  # ret ALLOW
]
buf = b"".join(struct.pack("HBBI", *i) for i in prog)
filt = ctypes.create_string_buffer(buf)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fp = Fprog(len(prog), ctypes.addressof(filt))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0: sys.exit("PR_SET_NO_NEW_PRIVS failed")
if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0: sys.exit("PR_SET_SECCOMP failed: %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
PY
# Without proot the chroot rung is not available: the build fails at once, naming the cause.
mkdir -p "$T/path"
for f in /usr/local/bin/* /usr/bin/* /usr/sbin/* /bin/* /sbin/*; do
  n=$(basename "$f")
  [[ $n == proot || -e $T/path/$n ]] || ln -s "$f" "$T/path/$n"
done
rc=0
PATH="$T/path" python3 "$T/deny_unshare.py" "$OCIB" build -o type=local,dest="$T/out" "$ctx" >"$T/build.out" 2>"$T/build.err" || rc=$?
[[ $rc -ne 0 ]] || fail "a build succeeded although user namespaces are refused and proot is missing"
assert_file_contains "$T/build.err" "creating a user namespace is refused here"
assert_file_contains "$T/build.err" "seccomp=unconfined"
assert_file_contains "$T/build.err" "install proot"
if grep -q "no snapshot driver works here" "$T/build.err"; then fail "the refusal is blamed on the snapshot drivers"; fi
PATH="$T/path" python3 "$T/deny_unshare.py" "$OCIB" info >"$T/info.out" 2>&1 || true
assert_file_contains "$T/info.out" "creating a user namespace is refused here"

# With proot: the chroot rung, announced once with the same cause and change (it_ci_container
# builds there under Docker's real default profile).
if command -v proot >/dev/null; then
  rc=0
  python3 "$T/deny_unshare.py" "$OCIB" build -o type=local,dest="$T/out2" "$ctx" >"$T/build2.out" 2>"$T/build2.err" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$T/build2.err" >&2; fail "the chroot rung did not build"; }
  assert_file_contains "$T/build2.err" "isolation: chroot: creating a user namespace is refused here"
  assert_file_contains "$T/build2.err" "seccomp=unconfined"
  cmp "$T/out2/bin/busybox" "$ctx/busybox" || fail "the chroot rung's COPY is not the context's file"
fi
log "ok"
