#!/usr/bin/env python3
"""Writes a hostile base image as an OCI layout: gen_image.py OUTDIR CASE HOSTDIR.

Cases (each a single layer with a static busybox at /bin/busybox and /bin/sh):
  workdir  /w -> HOSTDIR (absolute symlink; HOSTDIR exists in the image too) and config
           WorkingDir /w/from-config: creating the
           working directory must stay inside the root.
  proc     /proc -> HOSTDIR: the sandbox must refuse to mount /proc through it.
  dev      /dev -> HOSTDIR: likewise for /dev.
"""
import hashlib, io, json, os, sys, tarfile

out, case, hostdir = sys.argv[1], sys.argv[2], sys.argv[3]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    def add_dir(name):
        ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; tar.addfile(ti)
    def add_link(name, target):
        ti = tarfile.TarInfo(name); ti.type = tarfile.SYMTYPE; ti.linkname = target; tar.addfile(ti)
    add_dir("bin")
    with open("/bin/busybox", "rb") as f:
        data = f.read()
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(data); ti.mode = 0o755
    tar.addfile(ti, io.BytesIO(data))
    add_link("bin/sh", "busybox")
    for tool in ("true", "mkdir", "ls", "cat", "echo"):
        add_link("bin/" + tool, "busybox")
    config_extra = {}
    if case == "workdir":
        # The same path exists inside the image, so the link resolves there too (as a real
        # attack's would); only resolving on the host would reach the host's directory.
        parts = hostdir.strip("/").split("/")
        for i in range(len(parts)):
            add_dir("/".join(parts[: i + 1]))
        add_link("w", hostdir)
        config_extra["WorkingDir"] = "/w/from-config"
    elif case in ("proc", "dev"):
        add_link(case, hostdir)
    else:
        sys.exit("unknown case " + case)
layer = buf.getvalue()

def blob(data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}

config = {"architecture": "amd64", "os": "linux",
          "config": dict({"Env": ["PATH=/bin"]}, **config_extra),
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
import platform
if platform.machine() in ("aarch64", "arm64"):
    config["architecture"] = "arm64"
cfg = blob(json.dumps(config).encode())
lay = blob(layer)
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
            "layers": [dict(lay, mediaType="application/vnd.oci.image.layer.v1.tar")]}
man = blob(json.dumps(manifest).encode())
index = {"schemaVersion": 2, "manifests": [dict(man, mediaType="application/vnd.oci.image.manifest.v1+json",
                                                  annotations={"org.opencontainers.image.ref.name": "latest"})]}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
