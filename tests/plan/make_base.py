#!/usr/bin/env python3
"""Writes a byte-for-byte reproducible OCI archive (one uncompressed layer: /etc/passwd,
/etc/group, /bin/true as a text file): the base image of the plan-key corpus, so the keys of
steps on top of it are the same on every machine.  Usage: make_base.py OUT.tar [ARCH]"""
import hashlib, io, json, sys, tarfile

out = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "amd64"


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode, kind in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 1700000000, 0, 0, "", ""
            ti.mode = mode
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


layer = tar_bytes([
    ("etc", b"", 0o755, "dir"),
    ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 0o644, "file"),
    ("etc/group", b"root:x:0:\nwheel:x:10:root\napp:x:1000:\n", 0o644, "file"),
    ("bin", b"", 0o755, "dir"),
    ("bin/true", b"#!/bin/sh\n", 0o755, "file"),
])
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
config = json.dumps({
    "architecture": arch, "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
    "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "make_base.py"}],
}, sort_keys=True, separators=(",", ":")).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
}, sort_keys=True, separators=(",", ":")).encode()
index = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                   "size": len(manifest), "platform": {"architecture": arch, "os": "linux"}}],
}, sort_keys=True, separators=(",", ":")).encode()
files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644, "file"), ("index.json", index, 0o644, "file"),
         ("blobs", b"", 0o755, "dir"), ("blobs/sha256", b"", 0o755, "dir")]
for b in (layer, config, manifest):
    files.append(("blobs/sha256/" + sha(b)[7:], b, 0o644, "file"))
with open(out, "wb") as f:
    f.write(tar_bytes(files))
