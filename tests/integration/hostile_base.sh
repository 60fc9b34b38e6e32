#!/usr/bin/env bash
# A base image whose layer holds hostile tar entries ('..' names, a write through a symlink, a
# name that is a terminal escape sequence): `ocib import` takes the OCI archive, a build FROM it
# unpacks the layer, refuses those entries and says so on stderr, naming the layer digest and
# the first refused entries with their reasons (escaped, never raw escape sequences); the
# build still succeeds with what was safe, and nothing lands outside the snapshot.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3

lay="$T/hostile-layout"
python3 - "$lay" "$(host_arch)" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, arch = sys.argv[1], sys.argv[2]
os.makedirs(out + "/blobs/sha256")

def entry(t, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.mtime = kind, link, 0o644, 1700000000
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        ti.mode = 0o755
        t.addfile(ti)

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    entry(t, "etc", kind=tarfile.DIRTYPE)
    entry(t, "etc/ok.txt", b"fine\n")
    entry(t, "../escape.txt")
    entry(t, "lnk", kind=tarfile.SYMTYPE, link="/tmp")
    entry(t, "lnk/pwned.txt")
    entry(t, "../\x1b]0;owned\x07")
    entry(t, "etc/../../up.txt")
tar = raw.getvalue()
layer = gzip.compress(tar, mtime=0)

def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d

ld = put(layer)
cfg = json.dumps({"architecture": arch, "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
cd = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld,
                              "size": len(layer)}]}).encode()
md = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "1"}}]},
          open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(out + "/../layer-digest", "w").write(ld)
PY
tar -C "$lay" -cf "$T/hostile.tar" oci-layout index.json blobs
layer=$(cat "$T/layer-digest")

ocib_ok import import "$T/hostile.tar" hostile:1
ctx="$T/ctx"
mkdir -p "$ctx"
echo hello >"$ctx/hello"
printf 'FROM hostile:1\nCOPY hello /hello\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
ocib_ok build build --progress=plain -o type=oci,dest="$T/out.tar" "$ctx"

# The warning: layer digest, count, the first entries with reasons.
grep -F "warning: layer $layer: 4 entries refused or changed: " "$T/build.err" >"$T/warning" ||
  { show_err build; fail "no warning naming layer $layer and its 4 refused entries"; }
assert_file_contains "$T/warning" "../escape.txt: '..' component" "the warning"
assert_file_contains "$T/warning" "lnk/pwned.txt: " "the warning"
assert_file_contains "$T/warning" '../\x1b]0;owned\x07: '"'..' component" "the warning (escaped name)"
assert_file_contains "$T/warning" "etc/../../up.txt: '..' component" "the warning"
if grep -q $'\x1b' "$T/build.err"; then fail "a raw escape sequence from the layer reached stderr"; fi
[[ ! -e /tmp/pwned.txt && ! -e $T/escape.txt && ! -e $T/up.txt ]] || fail "a hostile entry was written outside the snapshot"

# The safe part of the layer is in the image's lower layer; the build's own layer is fine.
oci_extract "$T/out.tar" "$T/out"
oci_layer_list "$T/out" -1 | contains -x 'hello' || fail "the COPY layer lacks hello"

# Rootless (the unpack runs in a user namespace as a subordinate root): the same warning.
if [[ $(id -u) -eq 0 ]]; then
  ensure_test_user
  user_area "$IT_USER"
  cp "$T/hostile.tar" "$T/u/hostile.tar"
  chown "$IT_USER:" "$T/u/hostile.tar"
  ocib_ok uimport import "$T/u/hostile.tar" hostile:1
  ocib_ok ubuild build --progress=plain -o type=oci,dest="$T/u/out.tar" "$ctx"
  grep -qF "warning: layer $layer: 4 entries refused or changed: ../escape.txt: '..' component" "$T/ubuild.err" ||
    { show_err ubuild; fail "rootless: no warning naming layer $layer and its refused entries"; }
fi
