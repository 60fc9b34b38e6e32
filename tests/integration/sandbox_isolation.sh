#!/usr/bin/env bash
# What a RUN step sees: seccomp filter mode, no_new_privs, no network but lo, its own
# hostname, pid 1. The probe writes its findings into the image; we read them back.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd umoci

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN mkdir /res && grep Seccomp /proc/self/status > /res/seccomp && grep NoNewPrivs /proc/self/status > /res/nnp && cat /proc/net/dev > /res/netdev && hostname > /res/hostname && echo $$ > /res/pid && readlink /proc/1/exe > /res/exe && (cat /proc/self/status | grep CapEff > /res/capeff || true)
RUN mkdir -p /mnt && (unshare -U true 2>/res/unshare.err && echo allowed || echo refused) > /res/unshare && (mount -t tmpfs x /mnt 2>/res/mount.err && echo allowed || echo refused) > /res/mount && grep -c ' /mnt ' /proc/mounts > /res/mnt-mounts || true
DF

ocib_ok build build -t sandbox:1 --network=none -o type=oci,dest="$T/sb.tar" --progress=plain "$ctx"
oci_extract "$T/sb.tar" "$T/layout"
ref=$(oci_ref "$T/layout")
umoci_unpack "$T/layout" "$ref" "$T/bundle"
res="$T/bundle/rootfs/res"
for f in seccomp nnp netdev hostname pid exe unshare mount mnt-mounts; do
  [[ -f $res/$f ]] || fail "/res/$f missing from the image"
done

grep -qx "$(printf 'Seccomp:\t2')" "$res/seccomp" ||
  fail "RUN is not under a seccomp filter: $(tr '\n' ' ' <"$res/seccomp")"
assert_eq "$(cat "$res/nnp")" "$(printf 'NoNewPrivs:\t1')" "no_new_privs in RUN"
# /proc/net/dev: two header lines, then one line per interface.
ifaces=$(tail -n +3 "$res/netdev" | awk -F: '{gsub(/ /, "", $1); print $1}' | sort | tr '\n' ' ')
assert_eq "$ifaces" "lo " "network interfaces visible in RUN with --network=none"
host_name=$(cat /proc/sys/kernel/hostname)
[[ $(cat "$res/hostname") != "$host_name" ]] || fail "RUN sees the host's hostname '$host_name' (no UTS namespace)"
assert_eq "$(cat "$res/pid")" "1" "pid of the RUN shell (\$\$)"
assert_eq "$(cat "$res/exe")" "/bin/busybox" "readlink /proc/1/exe in RUN"
# Docker's default seccomp profile refuses namespaces and mounts to a step (moby allows them
# only with CAP_SYS_ADMIN, which a step never has): both fail with EPERM.
assert_eq "$(cat "$res/unshare")" "refused" "unshare -U true in RUN ($(cat "$res/unshare.err"))"
assert_file_contains "$res/unshare.err" "Operation not permitted" "unshare's error in RUN"
assert_eq "$(cat "$res/mount")" "refused" "mount -t tmpfs x /mnt in RUN ($(cat "$res/mount.err"))"
# (busybox mount words EPERM as "permission denied (are you root?)")
grep -qiE 'Operation not permitted|permission denied' "$res/mount.err" ||
  fail "mount in RUN failed, but not with EPERM: $(cat "$res/mount.err")"
assert_eq "$(cat "$res/mnt-mounts")" "0" "mounts on /mnt seen in RUN after the refused mount"

# The hostname is settable as in BuildKit (--build-arg BUILDKIT_SANDBOX_HOSTNAME), in the UTS
# namespace and the step's /etc/hosts, and it is part of the step's cache key.
cat >"$ctx/Dockerfile.host" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox hostname > /h; /bin/busybox grep -c ' builder-7$' /etc/hosts > /in-hosts || true"]
DF
ocib_ok host build -t host:1 --build-arg BUILDKIT_SANDBOX_HOSTNAME=builder-7 -f "$ctx/Dockerfile.host" \
  -o type=local,dest="$T/hostfs" --progress=plain "$ctx"
assert_eq "$(cat "$T/hostfs/h")" "builder-7" "hostname in RUN with BUILDKIT_SANDBOX_HOSTNAME"
assert_eq "$(cat "$T/hostfs/in-hosts")" "1" "the hostname's line in the step's /etc/hosts"
if contains 'was not consumed' "$T/host.err"; then fail "BUILDKIT_SANDBOX_HOSTNAME reported as an unused build-arg"; fi
ocib_ok host2 build -f "$ctx/Dockerfile.host" -o type=local,dest="$T/hostfs2" --progress=plain "$ctx"
[[ $(cat "$T/hostfs2/h") != "builder-7" ]] || fail "a different hostname reused the cached step"
rc=0
ocib_run badhost build --build-arg 'BUILDKIT_SANDBOX_HOSTNAME=a b' -f "$ctx/Dockerfile.host" "$ctx" || rc=$?
[[ $rc -ne 0 ]] && contains -F 'not a valid hostname' "$T/badhost.err" || fail "invalid hostname accepted: $(cat "$T/badhost.err")"

# RUN --security=insecure: refused without --allow security.insecure (naming the line); with
# it, root in the step has every capability of its user namespace and no seccomp filter, so
# a tmpfs mount works there; a sandboxed step of the same build keeps the default profile.
cat >"$ctx/Dockerfile.insecure" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN --security=insecure ["/bin/busybox", "sh", "-c", "/bin/busybox grep Seccomp: /proc/self/status > /seccomp-insecure; /bin/busybox grep CapEff /proc/self/status > /capeff-insecure; /bin/busybox mkdir -p /mnt && /bin/busybox mount -t tmpfs x /mnt && echo mounted > /mount-insecure"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox grep Seccomp: /proc/self/status > /seccomp-sandbox"]
DF
rc=0
ocib_run insec0 build -f "$ctx/Dockerfile.insecure" "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "RUN --security=insecure ran without --allow security.insecure"
assert_file_contains "$T/insec0.err" "Dockerfile.insecure:3" "insecure refusal names the line"
assert_file_contains "$T/insec0.err" "--allow security.insecure" "insecure refusal says how to allow it"
ocib_ok insec build --allow security.insecure -f "$ctx/Dockerfile.insecure" -o type=local,dest="$T/insecfs" "$ctx"
assert_eq "$(awk '{print $2}' "$T/insecfs/seccomp-insecure")" "0" "Seccomp in an insecure RUN"
assert_eq "$(cat "$T/insecfs/mount-insecure")" "mounted" "mount in an insecure RUN"
[[ $(awk '{print $2}' "$T/insecfs/capeff-insecure") != "$(awk '{print $2}' "$res/capeff")" ]] ||
  fail "an insecure RUN has the default capability set"
assert_eq "$(awk '{print $2}' "$T/insecfs/seccomp-sandbox")" "2" "Seccomp in the sandboxed RUN of the same build"

# Supplementary groups from the image's /etc/group as current BuildKit sets them (its
# testUserAdditionalGids, after CVE-2023-25173): the primary group always, and for a user found
# in /etc/passwd without an explicit group, every group listing it (the kernel sorts the list).
cat >"$ctx/Dockerfile.groups" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN mkdir -p /etc /g && chmod 777 /g && printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nuser:x:1000:1000::/home:/bin/sh\n' > /etc/passwd && printf 'root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nusers:x:100:other,user\nuser:x:1000:\nextra:x:1500:user\n' > /etc/group
RUN id > /g/root
USER 1234
RUN id > /g/1234
USER 1234:1234
RUN id > /g/1234-1234
USER daemon
RUN id > /g/daemon
USER user
RUN id > /g/user
USER user:extra
RUN id > /g/user-extra
DF
ocib_ok groups build -f "$ctx/Dockerfile.groups" -o type=local,dest="$T/groupsfs" "$ctx"
assert_eq "$(cat "$T/groupsfs/g/root")" "uid=0(root) gid=0(root) groups=0(root),10(wheel)" "id of root (listed in wheel)"
assert_eq "$(cat "$T/groupsfs/g/1234")" "uid=1234 gid=0(root) groups=0(root)" "id of USER 1234 (not in passwd)"
assert_eq "$(cat "$T/groupsfs/g/1234-1234")" "uid=1234 gid=1234 groups=1234" "id of USER 1234:1234"
assert_eq "$(cat "$T/groupsfs/g/daemon")" "uid=1(daemon) gid=1(daemon) groups=1(daemon)" "id of USER daemon"
assert_eq "$(cat "$T/groupsfs/g/user")" "uid=1000(user) gid=1000(user) groups=100(users),1000(user),1500(extra)" "id of USER user"
assert_eq "$(cat "$T/groupsfs/g/user-extra")" "uid=1000(user) gid=1500(extra) groups=1500(extra)" "id of USER user:extra"
