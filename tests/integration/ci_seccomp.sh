#!/usr/bin/env bash
# Inside a CI container with Docker's default seccomp profile, creating a user namespace is
# refused (unshare and clone with namespace flags get EPERM without CAP_SYS_ADMIN). Reproduced
# with a seccomp filter that refuses unshare(2) with EPERM, installed by python3 before it
# execs ocib: the build must fail at once with a message that names the cause (seccomp, not
# the snapshot drivers) and the change to make (seccomp=unconfined / the pod's
# seccompProfile), and `ocib info` must say the same. (The rung that would build there, with
# no namespaces at all, is not written yet: issue 18.)
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
rc=0
python3 "$T/deny_unshare.py" "$OCIB" build -o type=local,dest="$T/out" "$ctx" >"$T/build.out" 2>"$T/build.err" || rc=$?
[[ $rc -ne 0 ]] || fail "a build succeeded although user namespaces are refused"
assert_file_contains "$T/build.err" "creating a user namespace is refused here"
assert_file_contains "$T/build.err" "seccomp=unconfined"
if grep -q "no snapshot driver works here" "$T/build.err"; then fail "the refusal is blamed on the snapshot drivers"; fi
python3 "$T/deny_unshare.py" "$OCIB" info >"$T/info.out" 2>&1 || true
assert_file_contains "$T/info.out" "creating a user namespace is refused here"
log "ok"
