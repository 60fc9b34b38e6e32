#!/usr/bin/env bash
# More Dockerfile features end to end, with BuildKit's semantics: HEALTHCHECK and ONBUILD in the
# config, ONBUILD triggers of a base image run after FROM, predefined platform ARGs (in FROM
# and in a stage), proxy build args (usable undeclared, out of cache keys and history), WORKDIR
# creating its directory for the current USER, ADD of local tar archives (unpacked, "../"
# entries refused), ADD of an http URL (--checksum, Last-Modified, mode 0600), COPY --exclude,
# --parents, --link (a layer with only its files, cached independently of the parent),
# COPY --from=<image>, and clear errors for FROM --platform=windows/amd64 and ADD of a git URL.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd umoci python3 xz

arch=$(host_arch)
ctx="$T/ctx"
make_ctx "$ctx"
echo trig >"$ctx/trig.txt"
echo linked >"$ctx/link.txt"
echo plain >"$ctx/plain.txt"
echo "not a tar" | gzip >"$ctx/notar.gz"
mkdir -p "$ctx/app/sub/skip" "$T/tarsrc/a"
echo keep >"$ctx/app/keep.txt"
echo noise >"$ctx/app/noise.log"
echo keep >"$ctx/app/sub/keep.txt"
echo skipped >"$ctx/app/sub/skip/x.txt"
echo inside >"$T/tarsrc/a/b.txt"
tar -C "$T/tarsrc" -czf "$ctx/local.tar.gz" a
tar -C "$T/tarsrc" -cJf "$ctx/local.tar.xz" a
python3 - "$ctx/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    data = b"escaped\n"
    info = tarfile.TarInfo("../escaped.txt"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
PY

# A tiny HTTP server on loopback for ADD <url>.
www="$T/www"
mkdir -p "$www"
echo downloaded >"$www/dl.txt"
touch -d @1600000000 "$www/dl.txt"
sum="sha256:$(sha256sum "$www/dl.txt" | cut -d' ' -f1)"
start_http "$www"
port=$HTTP_PORT
chmod -R a+rX "$ctx"

export OCIB_ROOT="$T/store"

# ---- a base image carrying ONBUILD triggers and a HEALTHCHECK --------------------------
cat >"$ctx/Dockerfile.base" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
ONBUILD RUN echo triggered > /onbuild.txt
ONBUILD COPY trig.txt /trig.txt
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD ["/bin/true"]
DF
ocib_ok base build -f "$ctx/Dockerfile.base" -t "onb:$arch" -o type=oci,dest="$T/base.tar" "$ctx"
oci_extract "$T/base.tar" "$T/base"
bc=$(oci_config "$T/base")
assert_eq "$(jq -c '.config.OnBuild' "$bc")" '["RUN echo triggered > /onbuild.txt","COPY trig.txt /trig.txt"]' "OnBuild triggers recorded"
assert_eq "$(jq -c '.config.Healthcheck' "$bc")" \
  '{"Interval":30000000000,"Retries":3,"StartInterval":2000000000,"StartPeriod":60000000000,"Test":["CMD","/bin/true"],"Timeout":5000000000}' \
  "HEALTHCHECK exec form with all flags"

# ---- the image under test --------------------------------------------------------------
cat >"$ctx/Dockerfile" <<DF
FROM --platform=\$BUILDPLATFORM onb:\${TARGETARCH} AS final
ARG TARGETARCH
ARG TARGETPLATFORM
ARG BUILDOS
ARG V=1
RUN echo "\$TARGETARCH|\$TARGETPLATFORM|\$BUILDOS" > /plat.txt && echo "proxy=\$HTTP_PROXY" > /proxy.txt && echo \$V > /v.txt
USER 1234:4321
WORKDIR /work/deep
USER 0:0
ADD local.tar.gz /unpacked/
ADD local.tar.xz /unpacked2
ADD plain.txt notar.gz /added/
ADD --checksum=$sum http://127.0.0.1:$port/dl.txt /dl/
COPY --exclude=*.log --exclude=sub/skip app/ /app/
COPY --parents app/sub/keep.txt /par/
COPY --parents ./app/./sub/keep.txt /par2/
COPY --link link.txt /link.txt
COPY --from=onb:$arch /bin/busybox /copied-busybox
HEALTHCHECK --interval=10s CMD echo ok
DF
ocib_ok b1 build --build-arg HTTP_PROXY=http://proxy.invalid:3128 -t fe2:1 -o type=oci,dest="$T/fe2.tar" \
  --metadata-file "$T/m1.json" "$ctx"
if grep -q 'HTTP_PROXY was not consumed' "$T/b1.err"; then fail "a proxy build-arg was reported unused"; fi
oci_extract "$T/fe2.tar" "$T/lay"
umoci_unpack "$T/lay" "$(oci_ref "$T/lay")" "$T/b"
r="$T/b/rootfs"
cfg=$(oci_config "$T/lay")
assert_eq "$(cat "$r/onbuild.txt")" triggered "ONBUILD RUN of the base image ran"
assert_eq "$(cat "$r/trig.txt")" trig "ONBUILD COPY of the base image ran"
assert_eq "$(jq -c '.config.OnBuild' "$cfg")" null "OnBuild cleared in the child image"
assert_eq "$(jq -c '.config.Healthcheck' "$cfg")" '{"Interval":10000000000,"Test":["CMD-SHELL","echo ok"]}' \
  "HEALTHCHECK shell form"
assert_eq "$(cat "$r/plat.txt")" "$arch|linux/$arch|linux" "predefined platform ARGs in a stage"
assert_eq "$(cat "$r/proxy.txt")" "proxy=http://proxy.invalid:3128" "proxy build-arg without ARG"
if jq -r '.history[].created_by' "$cfg" | contains proxy.invalid; then fail "proxy value in the history"; fi
[[ -d $r/work/deep ]] || fail "WORKDIR did not create /work/deep"
assert_eq "$(stat -c %u:%g "$r/work/deep")" "1234:4321" "WORKDIR owner follows USER"
assert_eq "$(jq -r '.config.WorkingDir' "$cfg")" /work/deep "config WorkingDir"
assert_eq "$(cat "$r/unpacked/a/b.txt")" inside "ADD of a .tar.gz unpacks it"
assert_eq "$(cat "$r/unpacked2/a/b.txt")" inside "ADD of a .tar.xz unpacks it"
assert_eq "$(cat "$r/added/plain.txt")" plain "ADD of a plain file copies it"
assert_eq "$(gunzip -c "$r/added/notar.gz")" "not a tar" "ADD of a compressed non-tar copies it as is"
assert_eq "$(cat "$r/dl/dl.txt")" downloaded "ADD <url> downloads into dest/"
assert_eq "$(stat -c %Y "$r/dl/dl.txt")" 1600000000 "ADD <url> takes Last-Modified as mtime"
assert_eq "$(stat -c %a "$r/dl/dl.txt")" 600 "ADD <url> file mode"
[[ -f $r/app/keep.txt && -f $r/app/sub/keep.txt ]] || fail "COPY --exclude dropped kept files: $(find "$r/app")"
[[ ! -e $r/app/noise.log && ! -e $r/app/sub/skip ]] || fail "COPY --exclude copied excluded files: $(find "$r/app")"
[[ -f $r/par/app/sub/keep.txt ]] || fail "COPY --parents lost the parents: $(find "$r/par")"
[[ -f $r/par2/sub/keep.txt ]] || fail "COPY --parents with a /./ pivot: $(find "$r/par2")"
assert_eq "$(cat "$r/link.txt")" linked "COPY --link content"
cmp -s "$r/copied-busybox" /bin/busybox || fail "COPY --from=<image> did not copy the image's file"
# The --link layer holds only its own file.
m=$(oci_manifest "$T/lay")
n=$(jq '.layers | length' "$m")
found=""
for ((i = 0; i < n; i++)); do
  list=$(oci_layer_list "$T/lay" "$i")
  if grep -q 'link.txt' <<<"$list"; then found=$(grep -v '^\./$' <<<"$list" | sed 's|^\./||'); fi
done
assert_eq "$found" "link.txt" "the COPY --link layer's entries"

# Proxy args are not in cache keys; a changed ARG re-runs its RUN but not the --link copy.
ocib_ok b2 build --build-arg HTTP_PROXY=http://other.invalid:3128 -t fe2:1 -o type=oci,dest="$T/fe2b.tar" \
  --metadata-file "$T/m2.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/m2.json") == 0 ]] ||
  fail "changing only HTTP_PROXY re-ran steps: $(vertices "$T/m2.json" 'select(.cached == false) | .name')"
# What --exclude leaves out is out of the cache key too.
echo changed >"$ctx/app/noise.log"
echo changed >"$ctx/app/sub/skip/x.txt"
ocib_ok b2x build -t fe2:1 -o type=oci,dest="$T/fe2x.tar" --metadata-file "$T/m2x.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/m2x.json") == 0 ]] ||
  fail "editing --exclude'd files re-ran steps: $(vertices "$T/m2x.json" 'select(.cached == false) | .name')"
ocib_ok b3 build --build-arg V=2 -t fe2:1 -o type=oci,dest="$T/fe2c.tar" --metadata-file "$T/m3.json" "$ctx"
[[ $(vertices "$T/m3.json" 'select(.cached == false and (.name | test("RUN echo")))' | wc -l) -ge 1 ]] ||
  fail "changing V re-ran no RUN"
assert_eq "$(vertices "$T/m3.json" 'select(.name | test("COPY --link link.txt /link.txt$")) | .cached')" true \
  "COPY --link layer cached although its parent changed"

# Errors that name the line.
printf 'FROM --platform=windows/amd64 scratch\nRUN dir\n' >"$ctx/Dockerfile.plat"
if ocib_run plat build -f "$ctx/Dockerfile.plat" -o type=oci,dest="$T/x.tar" "$ctx"; then fail "windows RUN accepted"; fi
assert_file_contains "$T/plat.err" "Dockerfile.plat:2:" "RUN for windows error location"
assert_file_contains "$T/plat.err" "only linux images can be built" "FROM --platform error"
printf 'FROM scratch\nADD https://github.com/moby/buildkit.git /src\n' >"$ctx/Dockerfile.git"
if ocib_run git build -f "$ctx/Dockerfile.git" -o type=oci,dest="$T/x.tar" "$ctx"; then fail "ADD git accepted"; fi
assert_file_contains "$T/git.err" "Dockerfile.git:2: ADD of git repositories is not supported yet" "ADD git error"
printf 'FROM scratch\nADD --checksum=sha256:%064d http://127.0.0.1:%s/dl.txt /dl\n' 0 "$port" >"$ctx/Dockerfile.sum"
if ocib_run sum build -f "$ctx/Dockerfile.sum" -o type=oci,dest="$T/x.tar" "$ctx"; then fail "bad checksum accepted"; fi
assert_file_contains "$T/sum.err" "digest mismatch" "ADD --checksum mismatch"
printf 'FROM scratch\nADD evil.tar /x/\n' >"$ctx/Dockerfile.evil"
if ocib_run evil build -f "$ctx/Dockerfile.evil" -o type=oci,dest="$T/x.tar" "$ctx"; then
  fail "ADD of a tar with a ../ entry succeeded"
fi
assert_file_contains "$T/evil.err" 'entry "../escaped.txt" is outside the destination' "ADD of a tar with a ../ entry"
printf 'FROM scratch\nHEALTHCHECK --interval=1us CMD true\n' >"$ctx/Dockerfile.hc"
if ocib_run hc build -f "$ctx/Dockerfile.hc" -o type=oci,dest="$T/x.tar" "$ctx"; then fail "HEALTHCHECK 1us accepted"; fi
assert_file_contains "$T/hc.err" "cannot be less than 1ms" "HEALTHCHECK minimum interval"

# ENV/ARG expand every pair with the environment from before the instruction (BuildKit):
# `ENV A=1 B=${A:-x}` gives B=x; a second `ENV A=2 C=$A` gives C=1.
cat >"$ctx/Dockerfile.envpairs" <<'DF'
FROM scratch
COPY busybox /bin/busybox
ENV A=1 B=${A:-x}
ENV A=2 C=$A
ARG X=1 Y=${X:-none}
RUN ["/bin/busybox", "sh", "-c", "echo \"$A $B $C $X $Y\" > /pairs.txt"]
DF
ocib_ok envpairs build -f "$ctx/Dockerfile.envpairs" -o type=local,dest="$T/envpairs" "$ctx"
assert_eq "$(cat "$T/envpairs/pairs.txt")" "2 x 1 1 none" "ENV/ARG pairs expanded with the environment from before the instruction"

# FROM scratch's config has WorkingDir "/" (BuildKit's empty image; checked against it).
printf 'FROM scratch\nCOPY busybox /\n' >"$ctx/Dockerfile.scratchwd"
ocib_ok scratchwd build -f "$ctx/Dockerfile.scratchwd" -o type=oci,dest="$T/scratchwd.tar" "$ctx"
oci_extract "$T/scratchwd.tar" "$T/scratchwd"
swcfg="$T/scratchwd/blobs/sha256/$(jq -r '.config.digest' "$T/scratchwd/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/scratchwd/index.json" | cut -d: -f2)" | cut -d: -f2)"
assert_eq "$(jq -r '.config.WorkingDir' "$swcfg")" "/" "FROM scratch config WorkingDir"

# A context with only a lowercase "dockerfile" builds without -f (BuildKit falls back to it).
mkdir -p "$T/lower"
cp /bin/busybox "$T/lower/busybox"
printf 'FROM scratch\nCOPY busybox /lower-busybox\n' >"$T/lower/dockerfile"
ocib_ok lower build -o type=local,dest="$T/lowerfs" "$T/lower"
[[ -f $T/lowerfs/lower-busybox ]] || fail "the lowercase dockerfile was not used"

# Non-UTF-8 bytes (Latin-1) in RUN, LABEL and CMD must not crash ocib (it aborted with an
# uncaught JSON error, exit 134). As BuildKit (checked against the reference): such bytes read
# as U+FFFD everywhere (exec and shell form RUN, LABEL in the config).
mkdir -p "$T/latin1"
cp /bin/busybox "$T/latin1/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL x=caf\xe9\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo caf\xe9 > /out.txt"]\nSHELL ["/bin/busybox", "sh", "-c"]\nRUN /bin/busybox echo caf\xe9 > /out2.txt\nCMD ["caf\xe9"]\n' >"$T/latin1/Dockerfile"
rc=0
ocib_run latin1 build -o type=oci,dest="$T/latin1.tar" "$T/latin1" || rc=$?
[[ $rc -ne 134 && $rc -ne 139 ]] || fail "ocib crashed (status $rc) on Latin-1 bytes: $(tail -3 "$T/latin1.err")"
ocib_ok latin1b build -o type=local,dest="$T/latin1fs" "$T/latin1"
assert_eq "$(od -An -tx1 "$T/latin1fs/out.txt" | tr -d ' \n')" "636166efbfbd0a" "bytes a Latin-1 exec-form RUN wrote"
assert_eq "$(od -An -tx1 "$T/latin1fs/out2.txt" | tr -d ' \n')" "636166efbfbd0a" "bytes a Latin-1 shell-form RUN wrote"
oci_extract "$T/latin1.tar" "$T/latin1l"
l1cfg="$T/latin1l/blobs/sha256/$(jq -r '.config.digest' "$T/latin1l/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/latin1l/index.json" | cut -d: -f2)" | cut -d: -f2)"
assert_eq "$(jq -r '.config.Labels.x' "$l1cfg")" "caf�" "a Latin-1 LABEL in the config"
