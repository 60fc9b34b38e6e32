#!/usr/bin/env python3
"""Writes a runc bundle config.json that reproduces what a CI job's container gets from Docker
by default: Docker's default capability set (no CAP_SYS_ADMIN), its masked and read-only /proc
paths, no user namespace, and moby's default seccomp profile (profiles/seccomp/default.json,
from Debian's golang-github-docker-docker-dev) evaluated the way dockerd does for that
capability set and this machine's architecture and kernel.

  ci_container_bundle.py BUNDLE --uid N --gid N [--seccomp PROFILE.json] [--no-seccomp]
                         [--bind HOST:CONTAINER[:ro]]... -- ARGV...

The rootfs is BUNDLE/rootfs (made by the caller); /proc, /dev, /sys, /dev/pts, /dev/shm, /dev/mqueue
are set up as Docker does (the rootfs's own /tmp is used, as in an image).
"""
import argparse
import json
import os
import platform

# moby daemon/caps: the default set of a `docker run` container.
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# oci/defaults.go: the paths Docker masks and makes read-only in /proc.
MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "i686": "386"}


def kernel_version():
    parts = platform.release().split("-")[0].split(".")
    return tuple(int(p) for p in parts[:2] if p.isdigit())


def seccomp_for(profile_path, caps):
    """moby's profiles/seccomp setupSeccomp: keep each rule whose includes match and whose
    excludes do not, for these capabilities, this architecture and this kernel."""
    prof = json.load(open(profile_path))
    arch = GO_ARCH.get(platform.machine(), platform.machine())
    kver = kernel_version()
    arches = []
    for m in prof.get("archMap", []):
        native = m["architecture"]
        if native == {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}.get(arch):
            arches = [native] + m.get("subArchitectures", [])
    rules = []
    for s in prof["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel"):
            want = tuple(int(p) for p in inc["minKernel"].split("."))
            if kver < want:
                continue
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        names = s.get("names") or ([s["name"]] if s.get("name") else [])
        rule = {"names": names, "action": s["action"]}
        if s.get("args"):
            rule["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a} for a in s["args"]]
        if s.get("errnoRet") is not None:
            rule["errnoRet"] = s["errnoRet"]
        rules.append(rule)
    out = {"defaultAction": prof["defaultAction"], "architectures": arches, "syscalls": rules}
    if prof.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--uid", type=int, default=0)
    ap.add_argument("--gid", type=int, default=0)
    ap.add_argument("--seccomp")
    ap.add_argument("--bind", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--cwd", default="/")
    ap.add_argument("--host-network", action="store_true", help="no network namespace (docker run --network host)")
    ap.add_argument("argv", nargs="+")
    a = ap.parse_args()

    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]
    for b in a.bind:
        parts = b.split(":")
        opts = ["rbind", "rprivate"] + (["ro"] if len(parts) > 2 and parts[2] == "ro" else [])
        mounts.append({"destination": parts[1], "type": "bind", "source": parts[0], "options": opts})

    # Docker's default device cgroup: mknod of anything, read/write only the usual nodes.
    devices = [{"allow": False, "access": "rwm"},
               {"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"}]
    for major, minor in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, None), (10, 200)]:
        d = {"allow": True, "type": "c", "major": major, "access": "rwm"}
        if minor is not None:
            d["minor"] = minor
        devices.append(d)

    proc = {
        "terminal": False,
        "user": {"uid": a.uid, "gid": a.gid},
        "args": a.argv,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"] + a.env,
        "cwd": a.cwd,
        # Docker gives a non-root user no effective or permitted capabilities, only the bounding set.
        "capabilities": {
            "bounding": DOCKER_CAPS,
            "effective": DOCKER_CAPS if a.uid == 0 else [],
            "permitted": DOCKER_CAPS if a.uid == 0 else [],
        },
        "rlimits": [],
        "noNewPrivileges": False,
    }
    linux = {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")
                       if not (t == "network" and a.host_network)],
        "maskedPaths": MASKED,
        "readonlyPaths": READONLY,
        "resources": {"devices": devices},
    }
    if a.seccomp:
        linux["seccomp"] = seccomp_for(a.seccomp, DOCKER_CAPS)
    cfg = {
        "ociVersion": "1.0.2",
        "process": proc,
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "ci-job",
        "mounts": mounts,
        "linux": linux,
    }
    with open(os.path.join(a.bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    main()
