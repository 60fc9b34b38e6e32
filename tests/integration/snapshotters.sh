#!/usr/bin/env bash
# The snapshot drivers: the same Dockerfile (delete a lower file, replace a lower directory,
# chown, hardlink, symlink, a copied-up file keeping its xattr, COPY --from a multi-layer stage,
# RUN --mount=type=bind,rw) built with OCIB_SNAPSHOTTER=overlay, fuse-overlayfs and copy, as
# root and as the unprivileged ocib-test user, each in a fresh store. Every build must produce
# the same layers (diff_ids, with SOURCE_DATE_EPOCH clamping times), the layers must hold the
# whiteouts, opaque marker, hardlink and xattr, and `ocib info` must name the driver.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3
ensure_test_user

# A base image whose file carries a user xattr (busybox has no setfattr): imported, so that a
# RUN's chmod copies the file up with its xattr under every driver.
python3 - "$T/base.tar" <<'PY'
import sys, tarfile, io
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for d in ("bin", "etc"):
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
    t.add("/bin/busybox", arcname="bin/busybox")
    data = b"attr\n"
    ti = tarfile.TarInfo("etc/attr"); ti.size = len(data); ti.mode = 0o644
    ti.pax_headers = {"SCHILY.xattr.user.test": "kept"}
    t.addfile(ti, io.BytesIO(data))
PY
chmod 644 "$T/base.tar"

ctx="$T/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM base:1 AS base
RUN ["/bin/busybox","--install","-s","/bin"]
RUN mkdir -p /d/sub /e && echo f > /d/f && echo s > /d/sub/s && echo y > /e/y && echo x > /x && echo k > /k

FROM base AS other
RUN echo one > /one
RUN echo two > /two

FROM base
RUN rm /x && rm -rf /d && mkdir /d && echo g > /d/g && echo n > /new && chown 1:1 /new && \
    ln /new /hl && ln -s new /sl && rm /e/y && chmod 700 /e && chmod 600 /etc/attr
COPY --from=other /one /two /got/
RUN --mount=type=bind,from=other,target=/mnt,rw echo scribble > /mnt/one && cat /mnt/two > /from-mount
DF
chmod -R a+rX "$ctx"

drivers=(overlay fuse-overlayfs copy)
fuse_mode=$(stat -c %a /dev/fuse 2>/dev/null || true)
# fuse-overlayfs runs as the building user: Debian's udev rule makes /dev/fuse 0666; a machine
# without udev (containers, some CI) leaves it 0600. Grant it for this scenario, as udev would,
# and put it back afterwards.
if [[ -n $fuse_mode && $fuse_mode != 666 ]]; then
  trap '_rc=$?; chmod "$fuse_mode" /dev/fuse 2>/dev/null; (exit $_rc); it_cleanup' EXIT
  chmod 666 /dev/fuse
  log "/dev/fuse was mode $fuse_mode: 666 for this scenario (restored on exit)"
fi

declare -A diff_ids
ran=0
build_with() { # WHO DRIVER
  local who=$1 d=$2 name="$1-$2" env=(env OCIB_SNAPSHOTTER="$2" SOURCE_DATE_EPOCH=1)
  local store out
  if [[ $who == root ]]; then
    OCIB_AS=("${env[@]}")
    store="$T/store-$name"
    out="$T/$name.tar"
  else
    OCIB_AS=(as_user "$IT_USER" "${env[@]}")
    store="$T/u/store-$name"
    out="$T/u/$name.tar"
  fi
  export OCIB_ROOT="$store"
  # A driver that cannot work here fails `ocib info` with the reason: skip it, saying why.
  local rc=0
  ocib_run "info-$name" info || rc=$?
  if [[ $rc -ne 0 ]]; then
    if [[ $d == fuse-overlayfs ]]; then
      log "SKIP $who/$d: $(grep -E '^(snapshots|sandbox):' "$T/info-$name.out" | tr '\n' ' ')"
      return 0
    fi
    cat "$T/info-$name.out" "$T/info-$name.err" >&2
    fail "ocib info with OCIB_SNAPSHOTTER=$d failed as $who"
  fi
  assert_file_contains "$T/info-$name.out" "snapshots:  $d (set by OCIB_SNAPSHOTTER)" "ocib info as $who"
  ocib_ok "import-$name" import "$T/base.tar" base:1
  ocib_ok "build-$name" build --progress=plain -o type=oci,dest="$out" "$ctx"
  local lay="$T/lay-$name"
  oci_extract "$out" "$lay"
  diff_ids[$name]=$(jq -c '.rootfs.diff_ids' "$(oci_config "$lay")")
  # The RUN that changed the lower layers: what each driver must have recorded.
  local m blob list
  m=$(oci_manifest "$lay")
  blob=$(oci_blob "$lay" "$(jq -r '.layers[-3].digest' "$m")")
  list=$(tar --numeric-owner -tvzf "$blob")
  printf '%s\n' "$list" >"$T/list-$name.txt"
  for want in '.wh.x' 'd/.wh..wh..opq' 'd/g' 'e/.wh.y' 'sl -> new' 'etc/attr'; do
    grep -qF -- "$want" <<<"$list" || fail "$who/$d: the RUN layer lacks $want: $list"
  done
  grep -qE '^-rw-r--r-- 1/1 .* (hl|new)$' <<<"$list" || fail "$who/$d: no file owned by 1:1: $list"
  grep -qE '^hrw-r--r-- 1/1 .* (hl|new) link to (hl|new)$' <<<"$list" || fail "$who/$d: no hardlink: $list"
  grep -qE ' d/sub/| d/f$' <<<"$list" && fail "$who/$d: the replaced directory's old content is in the layer: $list"
  python3 - "$blob" <<'PY' || fail "$who/$d: etc/attr lost its xattr in the RUN layer"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = t.getmember("etc/attr")
    sys.exit(0 if m.pax_headers.get("SCHILY.xattr.user.test") == "kept" else 1)
PY
  # COPY --from a two-layer stage and the rw bind mount (whose writes are discarded).
  local last
  last=$(tar -tzf "$(oci_blob "$lay" "$(jq -r '.layers[-1].digest' "$m")")")
  assert_eq "$last" "from-mount" "$who/$d: last layer (RUN --mount=type=bind,rw)"
  list=$(tar -tzf "$(oci_blob "$lay" "$(jq -r '.layers[-2].digest' "$m")")" | sort | tr '\n' ' ')
  assert_eq "$list" "got/ got/one got/two " "$who/$d: COPY --from=other layer"
  ran=$((ran + 1))
  log "$who/$d: layers $(jq -r '.rootfs.diff_ids[-3]' "$(oci_config "$lay")")"
}

for d in "${drivers[@]}"; do build_with root "$d"; done
user_area "$IT_USER"
for d in "${drivers[@]}"; do build_with user "$d"; done

# Root and rootless, every driver: the same layers (ids are mapped back to container ids).
ref=root-overlay
[[ -n ${diff_ids[$ref]:-} ]] || fail "the kernel overlay build did not run"
for name in "${!diff_ids[@]}"; do
  if [[ ${diff_ids[$name]} != "${diff_ids[$ref]}" ]]; then
    diff "$T/list-$ref.txt" "$T/list-$name.txt" >&2 || true
    fail "$name produced other layers than $ref: ${diff_ids[$name]} vs ${diff_ids[$ref]}"
  fi
done
log "${ran} builds (root and ${IT_USER}; ${drivers[*]}) produced identical layers"

# Without the override, info names the automatic choice and why.
OCIB_AS=()
export OCIB_ROOT="$T/store-auto"
ocib_ok info-auto info
contains -E '^snapshots:  (overlay|fuse-overlayfs|copy) \(.+\)$' "$T/info-auto.out" ||
  fail "ocib info does not name the snapshot driver: $(cat "$T/info-auto.out")"
# An unknown driver is a clear error.
rc=0
OCIB_AS=(env OCIB_SNAPSHOTTER=nosuch)
ocib_run info-bad info || rc=$?
[[ $rc -ne 0 ]] || fail "OCIB_SNAPSHOTTER=nosuch was accepted"
assert_file_contains "$T/info-bad.out" "expected overlay, fuse-overlayfs, copy or auto" "ocib info with a bad OCIB_SNAPSHOTTER"
