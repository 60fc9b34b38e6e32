#!/usr/bin/env bash
# ocib inside a CI job's container, reproduced with runc and what Docker gives a container by
# default (ci_container_bundle.py): Docker's default capability set (no CAP_SYS_ADMIN), its
# masked and read-only /proc paths, no user namespace handed in, and moby's own default seccomp
# profile (profiles/seccomp/default.json from Debian's golang-github-docker-docker-dev, which
# refuses unshare and clone with namespace flags without CAP_SYS_ADMIN).
#  1. Docker's default seccomp, as uid 0 and as uid 1000: ocib takes the chroot rung by itself
#     (says so once, naming what is lost and the change to make), and the image is right: a
#     RUN's output, and as root a `chown 1:1` kept in the layer; as uid 1000 every file is the
#     caller's, so root's in the layer. `ocib info` names the rung.
#  2. No seccomp, masked /proc (root): the procfs-less rung, namespaces kept, chown 1:1 kept.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "runc needs it"
need_cmd runc python3 tar jq proot
# Put there by scripts/install-deps.sh from Debian's golang-github-docker-docker-dev.
profile=/usr/local/share/ocib-test/moby-seccomp-default.json
[[ -f $profile ]] || profile=/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
[[ -f $profile ]] || skip "moby's default seccomp profile not found (scripts/install-deps.sh extracts it from golang-github-docker-docker-dev)"

# The binary alone in a directory of its own: binding $T recursively would bring the bundles'
# own mounts (an unmasked /proc among them) into the container.
bin_dir="$T/bin"
mkdir -p "$bin_dir"
cp "$OCIB" "$bin_dir/ocib"
chmod -R a+rX "$bin_dir"
ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
WORKDIR /app
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo built > /app/out.txt && /bin/busybox mkdir /owned && /bin/busybox chown 1:1 /owned && /bin/busybox rm /bin/busybox.gone 2>/dev/null; /bin/busybox ls /proc/self/ > /app/proc.txt"]
FROM base
COPY --from=base /app/out.txt /copied.txt
DF
chmod -R a+rX "$ctx"

# run_in_ci NAME UID SECCOMP(yes|no) SHELL-SNIPPET: runs the snippet in a fresh CI-like container
# with ocib at /ocib/ocib, the context at /ctx (read-only) and /work writable by UID.
run_in_ci() {
  local name=$1 uid=$2 sec=$3 snippet=$4 rc=0
  local b="$T/bundle-$name"
  mkdir -p "$b/rootfs"/{usr,etc,proc,dev,sys,tmp,ocib,ctx,work}
  chmod 1777 "$b/rootfs/tmp"
  for l in bin lib lib64 sbin; do [[ -e /$l ]] && ln -sfn "usr/$l" "$b/rootfs/$l"; done
  mkdir -p "$T/work-$name"
  chown "$uid:$uid" "$T/work-$name"
  printf '%s\n' "$snippet" >"$T/work-$name/job.sh"
  local args=("$b" --uid "$uid" --gid "$uid" --bind /usr:/usr:ro --bind /etc:/etc:ro
    --bind "$bin_dir:/ocib:ro" --bind "$ctx:/ctx:ro" --bind "$T/work-$name:/work"
    --env OCIB_ROOT=/work/store --env HOME=/work --cwd /work)
  [[ $sec == yes ]] && args+=(--seccomp "$profile")
  [[ ${CI_HOST_NET:-} == 1 ]] && args+=(--host-network)
  python3 "$(dirname "$0")/ci_container_bundle.py" "${args[@]}" -- sh /work/job.sh
  mkdir -p "$T/runc"
  timeout 240 runc --root "$T/runc" run --bundle "$b" "ci-$name" </dev/null >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  return $rc
}

job='set -e
unshare -U true 2>/dev/null && echo "userns: allowed" || echo "userns: refused"
/ocib/ocib info > /work/info.txt 2>&1 || true
/ocib/ocib build --progress=plain -o type=oci,dest=/work/image.tar /ctx 2> /work/build.err
/ocib/ocib build --progress=plain --no-cache -o type=local,dest=/work/out /ctx 2> /work/build2.err'

# layer_listing DIR: "uid:gid path" of every entry in the image's layers, from the OCI tarball.
layer_listing() {
  local d=$1
  mkdir -p "$d/oci"
  tar -xf "$d/image.tar" -C "$d/oci"
  local m
  m=$(jq -r '.manifests[0].digest' "$d/oci/index.json")
  for l in $(jq -r '.layers[].digest' "$d/oci/blobs/sha256/${m#sha256:}"); do
    tar --numeric-owner -tvf "$d/oci/blobs/sha256/${l#sha256:}" | awk '{split($2, o, "/"); print o[1] ":" o[2], $NF}'
  done
}

for uid in 0 1000; do
  name="seccomp-$uid"
  rc=0
  run_in_ci "$name" "$uid" yes "$job" || rc=$?
  w="$T/work-$name"
  if [[ $rc -ne 0 ]]; then
    cat "$T/$name.out" "$T/$name.err" >&2
    tail -20 "$w/build.err" "$w/build2.err" >&2 2>/dev/null || true
    fail "uid $uid, Docker's default seccomp: the job failed (status $rc)"
  fi
  contains -x 'userns: refused' "$T/$name.out" || fail "uid $uid: the container allowed a user namespace: the profile is not Docker's default ($(cat "$T/$name.out"))"
  contains -F 'isolation:  chroot' "$w/info.txt" || fail "uid $uid: ocib info does not name the chroot rung: $(cat "$w/info.txt")"
  contains -F 'isolation: chroot' "$w/build.err" || fail "uid $uid: no warning that the build stepped down to the chroot rung"
  contains -F 'seccomp=unconfined' "$w/build.err" || fail "uid $uid: the warning does not say what to change for full isolation"
  contains -F 'proot' "$w/build.err" || fail "uid $uid: the warning does not say how steps run"
  [[ $(grep -c 'isolation: chroot' "$w/build.err") -eq 1 ]] || fail "uid $uid: the step-down is announced more than once"
  if contains -i 'snapshot driver' "$w/build.err"; then fail "uid $uid: the build blames a snapshot driver"; fi

  # The image: the RUN's output and the COPY --from of it, with their owners in the layers.
  assert_eq "$(cat "$w/out/app/out.txt")" "built" "uid $uid: the RUN's output in the exported filesystem"
  assert_eq "$(cat "$w/out/copied.txt")" "built" "uid $uid: COPY --from of the RUN's output"
  contains -x 'fd' "$w/out/app/proc.txt" || fail "uid $uid: the step had no /proc/self"
  for p in proc dev sys etc; do [[ ! -e $w/out/$p ]] || fail "uid $uid: /$p leaked into the image"; done
  listing=$(layer_listing "$w")
  printf '%s\n' "$listing" >"$T/$name.layers"
  contains -E '^[0-9]+:[0-9]+ app/out.txt$' <<<"$listing" || fail "uid $uid: the RUN's output is not in a layer: $listing"
  if [[ $uid == 0 ]]; then
    contains -x '1:1 owned/' <<<"$listing" || fail "uid 0: chown 1:1 in the RUN is not in the layer: $(grep owned <<<"$listing")"
    contains -x '0:0 bin/busybox' <<<"$listing" || fail "uid 0: COPY's file is not root's in the layer"
  else
    # Only the caller's id exists: it is root in the image, as under the single-id mapping.
    if contains -v -E '^0:0 ' <<<"$listing"; then fail "uid 1000: an entry in the layers is not root's: $(grep -v -E '^0:0 ' <<<"$listing")"; fi
    contains -x '0:0 owned/' <<<"$listing" || fail "uid 1000: the RUN's directory is not in the layer"
  fi
  log "uid $uid under Docker's default seccomp: chroot rung, image right"
done

# A real Dockerfile there: apt-get update && install (apt drops to _apt; the default network is
# the container's) on the Debian base it_debian_apt made and cached, as root in the container.
deb_tar=$(ls -t /var/cache/ocib-test/debian-bookworm-minbase-*.tar 2>/dev/null | head -n 1 || true)
if [[ -n $deb_tar ]]; then
  mkdir -p "$T/debctx"
  printf 'FROM debian:bookworm-min\nRUN apt-get update --error-on=any && apt-get install -y --no-install-recommends hello && hello > /hello.txt\n' >"$T/debctx/Dockerfile"
  cp "$deb_tar" "$T/debctx/base.tar"
  chmod -R a+rX "$T/debctx"
  ctx_saved=$ctx
  ctx="$T/debctx"
  rc=0
  # The job reaches the Debian archive as a CI job would (docker run --network host here: the
  # bundle has no bridge); /etc/resolv.conf is the host's, bound read-only with /etc.
  CI_HOST_NET=1 run_in_ci apt-0 0 yes 'set -e
/ocib/ocib import /ctx/base.tar debian:bookworm-min > /work/import.out 2>&1
/ocib/ocib build --progress=plain -o type=local,dest=/work/out /ctx 2> /work/build.err' || rc=$?
  ctx=$ctx_saved
  w="$T/work-apt-0"
  [[ $rc -eq 0 ]] || { tail -20 "$w/build.err" "$w/import.out" >&2 2>/dev/null; fail "apt-get in a Debian base under Docker's default seccomp failed (status $rc)"; }
  assert_eq "$(cat "$w/out/hello.txt")" "Hello, world!" "the package apt installed, run in the chroot rung"
  contains -F 'isolation: chroot' "$w/build.err" || fail "the apt build did not take the chroot rung"
  log "apt-get under Docker's default seccomp: ok"
else
  log "no cached Debian base (it_debian_apt makes it): the apt case is not run"
fi

# No seccomp profile, masked /proc: the namespaces work, a fresh /proc does not.
name=masked-0
rc=0
run_in_ci "$name" 0 no "$job" || rc=$?
w="$T/work-$name"
if [[ $rc -ne 0 ]]; then
  cat "$T/$name.out" "$T/$name.err" >&2
  tail -20 "$w/build.err" >&2 2>/dev/null || true
  fail "uid 0, masked /proc, no seccomp: the job failed (status $rc)"
fi
contains -x 'userns: allowed' "$T/$name.out" || fail "masked: the container refused a user namespace without seccomp"
contains -F 'isolation:  procfs-less' "$w/info.txt" || fail "masked: ocib info does not name the procfs-less rung: $(cat "$w/info.txt")"
contains -F 'isolation: procfs-less' "$w/build.err" || fail "masked: no warning for the procfs-less rung"
assert_eq "$(cat "$w/out/app/out.txt")" "built" "masked: the RUN's output"
listing=$(layer_listing "$w")
contains -x '1:1 owned/' <<<"$listing" || fail "masked: chown 1:1 in the RUN is not in the layer"
log PASS
