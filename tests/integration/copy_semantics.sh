#!/usr/bin/env bash
# COPY and ADD placing files as BuildKit does (each case checked against BuildKit itself, see
# the comments): owners kept by COPY --from and reset by COPY from the context, --chown owning
# the directories a copy creates (ADD of an archive too), named symlink sources followed while
# symlinks inside a copied directory stay symlinks, destinations resolved through symlinks in
# the image (an archive's var/run/ written through var/run -> /run), wildcards that match
# nothing, one wildcard matching several sources into a dest without a trailing '/', /dev and
# /sys as plain directories of the image, and an empty dest (an unset variable) meaning the working directory, with --link too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "the image's owners are read back from a root umoci unpack"
need_cmd umoci tar

ctx="$T/ctx"
make_ctx "$ctx"
echo ctx >"$ctx/ctxfile"
echo contents0 >"$ctx/testfile"
mkdir -p "$ctx/dir/sub" "$ctx/dwl" "$ctx/dirA/s" "$ctx/dirB"
echo a >"$ctx/dir/a"
echo b >"$ctx/dir/sub/b"
ln -s ctxfile "$ctx/lnk"
ln -s dirA "$ctx/dlink"
ln -s ../ctxfile "$ctx/dwl/inner"
echo real >"$ctx/dwl/real"
echo A >"$ctx/dirA/fa"
echo As >"$ctx/dirA/s/x"
echo B >"$ctx/dirB/fb"
echo 1 >"$ctx/g1.txt"
echo 2 >"$ctx/g2.txt"
mkdir -p "$T/tsrc/sub" "$T/vr/var/run" "$T/t1" "$T/t2"
echo t >"$T/tsrc/sub/t"
tar -C "$T/tsrc" --numeric-owner --owner=5 --group=6 -cf "$ctx/t.tar" sub
echo vr >"$T/vr/var/run/x"
tar -C "$T/vr" -cf "$ctx/vr.tar" var
echo one >"$T/t1/one"
echo two >"$T/t2/two"
tar -C "$T/t1" -cf "$ctx/a1.tar" one
tar -C "$T/t2" -cf "$ctx/a2.tar" two
chmod -R a+rX "$ctx"

cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS stage
RUN mkdir -p /s/d/e && echo f > /s/f && chown 123:456 /s/f && echo g > /s/d/e/g && chown -R 77:88 /s/d \
 && ln -s f /s/lnk && chown -h 11:22 /s/lnk

FROM base
COPY --from=stage /s/f /f1
COPY --from=stage /s/d /d1
COPY --from=stage /s/lnk /l3s
COPY ctxfile /ctxfile
COPY --chown=300:400 dir/ /c2/a/b/
COPY --chown=300:400 --from=stage /s/f /c2f/x/
COPY --chown=300:400 --from=stage /s/d /c2d
ADD --chown=300:400 t.tar /out/
COPY lnk /l3
COPY dlink /l3dir
COPY dwl /l3d/
COPY dl* ln* /l3g/
RUN mkdir /dir /run /var && ln -s /dir /symlink && ln -s /run /var/run \
 && echo old > /realfile && ln -s /realfile /flink && ln -s ../dir /rel && ln -s rel /rel2
COPY ctxfile /symlink/
COPY g1.txt /symlink
COPY dir /rel2/viarel/
COPY ctxfile /flink
ADD vr.tar /
COPY ctxfile nomatch* /c5/
COPY nomatch* /c5none/
ADD dir* /5
COPY g*.txt /c6
COPY *.tar /c6tar
ADD a*.tar /c6add
COPY g1.txt g2.txt /c7
COPY ctxfile /dev/
COPY --from=stage /s/f /sys/x/
WORKDIR /var/www
ENV empty=""
COPY --link testfile $empty
RUN [ "$(cat testfile)" = contents0 ]
WORKDIR /srv
COPY ctxfile $empty
DF
ocib_ok build build -t cs:1 -o type=oci,dest="$T/img.tar" "$ctx"
oci_extract "$T/img.tar" "$T/lay"
umoci_unpack "$T/lay" "$(oci_ref "$T/lay")" "$T/b"
r="$T/b/rootfs"
own() { stat -c %u:%g "$r$1"; }
kind() { stat -c %F "$r$1"; }

# 1. COPY --from keeps the stage's owners (a created dest dir is root's); the context's are 0:0.
assert_eq "$(own /f1)" 123:456 "COPY --from keeps the file's owner"
assert_eq "$(own /d1/e/g)" 77:88 "COPY --from keeps owners inside a directory"
assert_eq "$(own /d1/e)" 77:88 "COPY --from keeps a subdirectory's owner"
assert_eq "$(own /d1)" 0:0 "the dest directory COPY --from creates is root's"
assert_eq "$(own /ctxfile)" 0:0 "COPY from the context gives 0:0"

# 2. --chown owns the directories the copy creates (BuildKit: c2 c2/a c2/a/b, c2f c2f/x, out
#    and the archive's entries all 300:400).
for p in /c2 /c2/a /c2/a/b /c2/a/b/a /c2/a/b/sub /c2/a/b/sub/b /c2f /c2f/x /c2f/x/f /c2d /c2d/e /c2d/e/g \
  /out /out/sub /out/sub/t; do
  assert_eq "$(own "$p")" 300:400 "--chown owner of $p"
done

# 3. A named symlink source is followed (also through COPY --from, and when a wildcard
#    matches it); symlinks inside a copied directory stay.
assert_eq "$(kind /l3)" "regular file" "COPY of a symlink copies its target"
assert_eq "$(cat "$r/l3")" ctx "content of the followed symlink"
assert_eq "$(kind /l3s)" "regular file" "COPY --from of a symlink copies its target"
assert_eq "$(own /l3s)" 123:456 "the followed symlink's target's owner"
assert_eq "$(cat "$r/l3dir/fa")" A "a symlink to a directory copies the directory's contents"
assert_eq "$(readlink "$r/l3d/inner")" ../ctxfile "a symlink inside a copied directory stays a symlink"
assert_eq "$(cat "$r/l3d/real")" real "the directory's file"
assert_eq "$(kind /l3g/lnk)" "regular file" "a wildcard-matched symlink is followed"
assert_eq "$(cat "$r/l3g/lnk")" ctx "content of the wildcard-matched symlink"
assert_eq "$(cat "$r/l3g/fa")|$(kind /l3g/s)" "A|directory" "a wildcard-matched symlink to a directory copies its contents"

# 4. Destinations resolve through symlinks in the image; an archive's var/run/ goes through
#    var/run -> /run.
assert_eq "$(readlink "$r/symlink")" /dir "the symlink dest stays a symlink"
assert_eq "$(cat "$r/dir/ctxfile")" ctx "COPY f /symlink/ lands in the directory it names"
assert_eq "$(cat "$r/dir/g1.txt")" 1 "COPY f /symlink (no slash) lands in the directory it names"
assert_eq "$(cat "$r/dir/viarel/a")" a "a dest through a chain of relative symlinks"
assert_eq "$(readlink "$r/flink")" /realfile "a symlink-to-file dest stays a symlink"
assert_eq "$(cat "$r/realfile")" ctx "COPY onto a symlink to a file writes the file it names"
assert_eq "$(readlink "$r/var/run")" /run "ADD of var/run/ keeps the var/run symlink"
assert_eq "$(cat "$r/run/x")" vr "ADD of var/run/x writes through the symlink"

# 5. A wildcard may match nothing, next to other sources or alone.
assert_eq "$(cat "$r/c5/ctxfile")" ctx "COPY foo nomatch* copies foo"
[[ ! -e $r/c5none ]] || fail "COPY nomatch* created its dest"

# 6. One wildcard matching several sources into a dest without '/': each is placed in turn
#    (BuildKit: directories merge into /5, a later file replaces an earlier one, archives unpack
#    into /c6add); two named sources likewise.
assert_eq "$(cat "$r/5/fa")|$(cat "$r/5/fb")|$(cat "$r/5/s/x")" "A|B|As" "ADD dir* /5 merges the directories"
assert_eq "$(cat "$r/c6")" 2 "COPY g*.txt /c6: the last match"
assert_eq "$(kind /c6tar)" "regular file" "COPY *.tar /c6tar copies (no unpacking)"
cmp -s "$r/c6tar" "$ctx/vr.tar" || fail "COPY *.tar /c6tar: not the last archive (vr.tar)"
assert_eq "$(cat "$r/c6add/one")|$(cat "$r/c6add/two")" "one|two" "ADD a*.tar /c6add unpacks both"
assert_eq "$(cat "$r/c7")" 2 "COPY g1.txt g2.txt /c7: the last source"

# 7. COPY writes into the image's /dev and /sys (BuildKit copies into the snapshot; only a RUN
#    mounts devices and sysfs there).
assert_eq "$(cat "$r/dev/ctxfile")" ctx "COPY ctxfile /dev/ lands in the layer"
assert_eq "$(cat "$r/sys/x/f")" f "COPY --from=stage /s/f /sys/x/ lands in the layer"

# 8. An empty dest is the working directory, a directory even with --link.
assert_eq "$(kind /var/www)" directory "COPY --link testfile \$empty keeps /var/www a directory"
assert_eq "$(cat "$r/var/www/testfile")" contents0 "COPY --link testfile \$empty copies into the workdir"
assert_eq "$(cat "$r/srv/ctxfile")" ctx "COPY ctxfile \$empty copies into the workdir"

# A plain source that does not exist is still an error.
printf 'FROM scratch\nCOPY busybox missing /\n' >"$ctx/Dockerfile.missing"
rc=0
ocib_run missing build -f "$ctx/Dockerfile.missing" -o type=oci,dest="$T/m.tar" "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "COPY of a missing source succeeded"
assert_file_contains "$T/missing.err" "not found" "the missing source's error"
log "ok"
