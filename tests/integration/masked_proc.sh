#!/usr/bin/env bash
# Inside a container, /proc usually has masked paths (/proc/timer_list, /proc/keys bound over
# with /dev/null, /proc/sys read-only): the kernel then refuses a fresh procfs in a user
# namespace, and every step used to fail with "mount proc: Operation not permitted". Reproduced
# here with a private mount namespace whose /proc is masked the way Docker masks it. ocib must
# fall back to the outer /proc (procfs-less isolation) with a warning, build correctly (root
# and rootless), and with OCIB_ISOLATION=full (or --isolation=full) refuse with a message naming the cause.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "unshare -m and masking /proc need it"
need_cmd unshare

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo $$ > /sh-pid.txt; /bin/busybox mkdir /owned && /bin/busybox chown 1:1 /owned && /bin/busybox cat /proc/self/uid_map > /uid_map.txt"]
DF
chmod -R a+rX "$ctx"
mask='mount --bind /dev/null /proc/timer_list && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys'

# in_masked NAME CMD...: runs CMD (a shell snippet) in a mount namespace with a masked /proc.
in_masked() {
  local name=$1
  shift
  export -f as_user
  export T OCIB OCIB_ROOT IT_USER
  unshare -m --propagation private bash -c "$mask && $*" >"$T/$name.out" 2>"$T/$name.err"
}

for mode in root rootless; do
  if [[ $mode == rootless ]]; then
    ensure_test_user
    user_area "$IT_USER"
    run='as_user "$IT_USER" "$OCIB"'
    run_full='as_user "$IT_USER" env OCIB_ISOLATION=full "$OCIB"' full_flag=''
    out="$T/u/out"
  else
    run='"$OCIB"'
    run_full='"$OCIB"' full_flag='--isolation=full'  # the flag form of OCIB_ISOLATION
    out="$T/out"
  fi
  rc=0
  in_masked "$mode-info" "$run info" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$T/$mode-info.err" >&2; fail "$mode: ocib info failed in a masked /proc"; }
  contains -F 'isolation:  procfs-less' "$T/$mode-info.out" || fail "$mode: ocib info does not show the procfs-less rung: $(cat "$T/$mode-info.out")"

  rc=0
  in_masked "$mode-build" "$run build --progress=plain -o type=local,dest=$out $ctx" || rc=$?
  [[ $rc -eq 0 ]] || { tail -20 "$T/$mode-build.err" >&2; fail "$mode: build failed in a masked /proc (status $rc)"; }
  contains -F 'isolation: procfs-less' "$T/$mode-build.err" || fail "$mode: no warning that steps see the outer /proc"
  contains -F 'systempaths=unconfined' "$T/$mode-build.err" || fail "$mode: the warning does not say how to get full isolation"
  assert_eq "$(cat "$out/sh-pid.txt")" "1" "$mode: the step's shell pid (own pid namespace kept)"
  # (a rootless local export writes everything as the user; its ids are checked by it_rootless)
  [[ $mode == rootless || $(stat -c %u:%g "$out/owned") == "1:1" ]] || fail "$mode: chown 1:1 in the step gave $(stat -c %u:%g "$out/owned")"
  if [[ $mode == rootless ]]; then
    first=$(awk 'NR==1 {print $1, $2}' "$out/uid_map.txt")
    assert_eq "$first" "0 $(id -u "$IT_USER")" "$mode: the step's user namespace maps root to the user"
  fi

  rc=0
  in_masked "$mode-full" "$run_full build $full_flag --no-cache -o type=local,dest=$out-full $ctx" || rc=$?
  [[ $rc -ne 0 ]] || fail "$mode: OCIB_ISOLATION=full built although a fresh /proc is refused"
  contains -F 'a fresh /proc is refused here' "$T/$mode-full.err" || fail "$mode: the refusal does not name the cause: $(tail -3 "$T/$mode-full.err")"
  if contains -i 'snapshot driver' "$T/$mode-full.err"; then fail "$mode: the /proc refusal blames the snapshot driver"; fi
done
log PASS
