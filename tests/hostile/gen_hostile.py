#!/usr/bin/env python3
"""Writes hostile OCI layer tars with Python's tarfile (a second writer next to the libarchive
corpus in src/layers/unpack_test.cc: GNU @LongLink names, ustar prefix fields, gzip).

usage: gen_hostile.py OUTDIR PARENT
PARENT is the directory holding the unpack destination and the canaries; absolute symlink and
hardlink targets point into it. Each tar is named EXPECT__NAME.tar[.gz] where EXPECT is one of
ok, refused (unpack succeeds, the entry is listed in stats.refused), error, either.
"""
import io
import os
import sys
import tarfile


def entry(name, kind="f", data=b"x", link="", mode=0o644, pax=None):
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    ti.mtime = 1700000000
    ti.type = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE,
               "h": tarfile.LNKTYPE}[kind]
    ti.linkname = link
    if pax:
        ti.pax_headers = pax
    if kind == "f":
        ti.size = len(data)
        return ti, io.BytesIO(data)
    return ti, None


def write(outdir, fname, fmt, entries, gz=False):
    path = os.path.join(outdir, fname)
    with tarfile.open(path, "w:gz" if gz else "w", format=fmt) as t:
        for ti, f in entries:
            t.addfile(ti, f)


def main():
    outdir, parent = sys.argv[1], sys.argv[2]
    G, U, P = tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT
    long = "l" * 120
    write(outdir, "refused__gnu_longname_dotdot.tar", G,
          [entry(long + "/../../../escape.txt")])
    write(outdir, "refused__gnu_longlink_hardlink_outside.tar", G,
          [entry("h", "h", link=parent + "/" + long + "/../canary.txt")])
    write(outdir, "refused__ustar_prefix_dotdot.tar", U,
          [entry("p" * 80 + "/../../" + "q" * 60)])
    write(outdir, "refused__pax_symlink_then_write.tar", P,
          [entry("lnk", "l", link=parent + "/sibling"), entry("lnk/pwned.txt")])
    write(outdir, "refused__gnu_symlink_then_hardlink_through.tar", G,
          [entry("lnk", "l", link=parent), entry("h", "h", link="lnk/canary.txt")])
    write(outdir, "refused__gz_dotdot.tar.gz", P, [entry("../escape.txt")], gz=True)
    write(outdir, "refused__gz_opaque_root.tar.gz", P, [entry(".wh..wh..opq", data=b"")], gz=True)
    write(outdir, "refused__pax_overlay_xattr.tar", P,
          [entry("d", "d", mode=0o755,
                 pax={"SCHILY.xattr.trusted.overlay.opaque": "y",
                      "SCHILY.xattr.user.overlay.redirect": "/"})])
    write(outdir, "refused__whiteout_dotdot_gnu.tar", G,
          [entry(long + "/.wh..", data=b""), entry(long + "/.wh...", data=b"")])
    write(outdir, "ok__absolute_names.tar", G,
          [entry(parent + "/sibling/canary.txt", data=b"pwned"), entry("/etc/passwd")])
    write(outdir, "ok__symlink_replaced_by_file.tar", P,
          [entry("s", "l", link=parent + "/canary.txt"), entry("s", data=b"replaced")])
    write(outdir, "ok__setuid_and_dir_swap.tar", G,
          [entry("x", "d", mode=0o755), entry("x/y"), entry("x", data=b"now a file"),
           entry("su", mode=0o4755)])
    with open(os.path.join(outdir, "error__truncated.tar"), "wb") as f:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=U) as t:
            t.addfile(*entry("big", data=b"A" * 100000))
        f.write(buf.getvalue()[:4096])


if __name__ == "__main__":
    main()
