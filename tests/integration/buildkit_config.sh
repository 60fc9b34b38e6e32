#!/usr/bin/env bash
# Image config and messages as BuildKit writes them, end to end: history entries (ARG k=v,
# RUN |N k=v ... # buildkit, COPY with only --chown/--chmod), MAINTAINER as the author,
# TARGETSTAGE, proxy build args in both spellings, ADD of a URL with an empty path
# (__unnamed__), SOURCE_DATE_EPOCH as a build arg (config, history and layer times; an invalid
# value is a usage error), a failing RUN naming its Dockerfile line, and COPY of a URL refused
# in BuildKit's words. Expectations from BuildKit's dockerfile2llb (convert.go).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
mkdir -p "$T/www" && echo root-page >"$T/www/index.html"
start_http "$T/www"
cat >"$ctx/Dockerfile" <<EOF
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
FROM base AS final
MAINTAINER someone@example.com
ARG TARGETSTAGE
ARG A=1 B
ENV E=env
RUN echo "stage=\$TARGETSTAGE HP=\$HTTP_PROXY hp=\$http_proxy A=\$A" > /out.txt
COPY --chown=1:2 --chmod=640 --from=base /bin/busybox /copied
ADD http://127.0.0.1:$HTTP_PORT/ /web/
EOF
ocib_ok b1 build --build-arg Http_Proxy=http://proxy.invalid:3128 --build-arg SOURCE_DATE_EPOCH=1000000000 \
  -o type=oci-layout,dest="$T/img" -o type=local,dest="$T/fs" "$ctx"
cfg=$(oci_config "$T/img")
assert_eq "$(cat "$T/fs/out.txt")" "stage=final HP=http://proxy.invalid:3128 hp=http://proxy.invalid:3128 A=1" "RUN environment"
assert_eq "$(cat "$T/fs/web/__unnamed__")" "root-page" "ADD of a URL with an empty path"
assert_eq "$(jq -r .author "$cfg")" "someone@example.com" "MAINTAINER as the author"
assert_eq "$(jq -r '.config.Labels.maintainer // "none"' "$cfg")" "none" "MAINTAINER is no label"
jq -r '.history[].created_by' "$cfg" >"$T/history.txt"
for want in 'ARG TARGETSTAGE=final' 'ARG A=1 B' \
  'RUN |3 TARGETSTAGE=final A=1 B= /bin/sh -c echo "stage=$TARGETSTAGE HP=$HTTP_PROXY hp=$http_proxy A=$A" > /out.txt # buildkit' \
  'COPY --chown=1:2 --chmod=640 /bin/busybox /copied # buildkit' \
  'RUN /bin/busybox --install -s /bin # buildkit' \
  "ADD http://127.0.0.1:$HTTP_PORT/ /web/ # buildkit"; do
  grep -qxF -- "$want" "$T/history.txt" || { cat "$T/history.txt" >&2; fail "history lacks: $want"; }
done
if grep -q proxy.invalid "$T/history.txt"; then fail "a proxy value reached the history"; fi
# SOURCE_DATE_EPOCH (the build arg): created, every history entry and every file time.
assert_eq "$(jq -r .created "$cfg")" "2001-09-09T01:46:40Z" "created from SOURCE_DATE_EPOCH"
assert_eq "$(jq -r '[.history[].created] | unique | join(",")' "$cfg")" "2001-09-09T01:46:40Z" "history times"
: >"$T/times.txt"
for l in $(jq -r '.layers[].digest' "$(oci_manifest "$T/img")"); do
  TZ=UTC tar --full-time -tvzf "$(oci_blob "$T/img" "$l")" | awk '{print $4" "$5}' >>"$T/times.txt"
done
newest=$(sort "$T/times.txt" | tail -1)
[[ -s $T/times.txt ]] || fail "no layer entries listed"
[[ ! $newest > "2001-09-09 01:46:40" ]] || fail "a layer entry newer than SOURCE_DATE_EPOCH: $newest"

# An image with no layer at all is dated by the build (BuildKit), not 1970.
printf 'FROM scratch\nLABEL only=config\n' >"$ctx/Dockerfile.nolayer"
ocib_ok nolayer build -f "$ctx/Dockerfile.nolayer" -o type=oci-layout,dest="$T/nolayer" "$ctx"
created=$(jq -r .created "$(oci_config "$T/nolayer")")
(( $(date -d "$created" +%s) > $(date +%s) - 3600 )) || fail "a layerless image is dated $created"
assert_eq "$(jq -r '.history[0].created' "$(oci_config "$T/nolayer")")" "$created" "its history entry's time"

# An invalid SOURCE_DATE_EPOCH is a usage error before any work.
rc=0; ocib_run bad-epoch build --build-arg SOURCE_DATE_EPOCH=not-a-timestamp "$ctx" || rc=$?
assert_eq "$rc" 2 "exit status for an invalid SOURCE_DATE_EPOCH"
assert_file_contains "$T/bad-epoch.err" 'invalid SOURCE_DATE_EPOCH "not-a-timestamp"'

# A failing RUN names its line and shows it.
printf 'FROM scratch\nCOPY busybox /bin/busybox\n\nRUN ["/bin/busybox","sh","-c","exit 3"]\n' >"$ctx/Dockerfile.fail"
rc=0; ocib_run fail build -f "$ctx/Dockerfile.fail" "$ctx" || rc=$?
assert_eq "$rc" 1 "exit status of a failed RUN"
assert_file_contains "$T/fail.err" "Dockerfile.fail:4: [stage-0 3/3] RUN" "failed RUN's location"
assert_file_contains "$T/fail.err" 'exit code: 3'
grep -qxF 'RUN ["/bin/busybox","sh","-c","exit 3"]' "$T/fail.err" || fail "the failing line is not shown"

# COPY of a URL: BuildKit's words; a mistyped --target gets a suggestion.
printf 'FROM scratch AS build\nCOPY http://127.0.0.1:9/x /x\n' >"$ctx/Dockerfile.url"
if ocib_run url build -f "$ctx/Dockerfile.url" "$ctx"; then fail "COPY of a URL accepted"; fi
assert_file_contains "$T/url.err" "Dockerfile.url:2: source can't be a URL for COPY"
if ocib_run target build -f "$ctx/Dockerfile.url" --target bulid "$ctx"; then fail "--target bulid accepted"; fi
assert_file_contains "$T/target.err" 'target stage "bulid" could not be found (did you mean build?)'
# ADD --unpack (BuildKit 1.17): true unpacks a URL's archive; false keeps a local archive a file.
tar -cf "$T/www/a.tar" -C "$ctx" Dockerfile.url
cp "$T/www/a.tar" "$ctx/local.tar"
printf 'FROM scratch\nADD --unpack=true http://127.0.0.1:%s/a.tar /u/\nADD http://127.0.0.1:%s/a.tar /n/\nADD --unpack=false local.tar /l/\nADD local.tar /x/\n' \
  "$HTTP_PORT" "$HTTP_PORT" >"$ctx/Dockerfile.unpack"
ocib_ok unpack build -f "$ctx/Dockerfile.unpack" -o type=local,dest="$T/unpacked" "$ctx"
for f in u/Dockerfile.url n/a.tar l/local.tar x/Dockerfile.url; do
  [[ -f $T/unpacked/$f ]] || { find "$T/unpacked" >&2; fail "ADD --unpack: $f missing"; }
done
# --add-host and --shm-size reach every RUN (and are part of its key, as in BuildKit's ExecOp).
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","sh","-c","/bin/busybox cat /etc/hosts > /hosts; /bin/busybox df -k /dev/shm > /shm"]\n' >"$ctx/Dockerfile.hosts"
ocib_ok hosts build -f "$ctx/Dockerfile.hosts" --add-host db.local:10.1.2.3 --add-host v6host=[::1] --shm-size 128m \
  -o type=local,dest="$T/hosts" "$ctx"
grep -qxF "$(printf '10.1.2.3\tdb.local')" "$T/hosts/hosts" || fail "--add-host missing: $(cat "$T/hosts/hosts")"
grep -qxF "$(printf '::1\tv6host')" "$T/hosts/hosts" || fail "--add-host (IPv6) missing"
assert_eq "$(awk 'NR==2 {print $2}' "$T/hosts/shm")" 131072 "/dev/shm size in KiB with --shm-size 128m"
ocib_ok hosts2 build -f "$ctx/Dockerfile.hosts" -o type=local,dest="$T/hosts2" "$ctx"
if grep -q db.local "$T/hosts2/hosts"; then fail "a build without --add-host reused the step with it"; fi
assert_eq "$(awk 'NR==2 {print $2}' "$T/hosts2/shm")" 65536 "default /dev/shm size in KiB"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","sh","-c","ulimit -n > /nofile; ulimit -Hn > /nofile-hard"]\n' >"$ctx/Dockerfile.ulimit"
ocib_ok ulimit build -f "$ctx/Dockerfile.ulimit" --ulimit nofile=512:1024 -o type=local,dest="$T/ulimit" "$ctx"
assert_eq "$(cat "$T/ulimit/nofile") $(cat "$T/ulimit/nofile-hard")" "512 1024" "--ulimit nofile=512:1024 in RUN"
rc=0; ocib_run badulimit build --ulimit nofiles=1 "$ctx" || rc=$?
assert_eq "$rc" 2 "exit status for an unknown --ulimit"
assert_file_contains "$T/badulimit.err" 'did you mean "nofile"?'
rc=0; ocib_run badhost build --add-host nocolon "$ctx" || rc=$?
assert_eq "$rc" 2 "exit status for a bad --add-host"

# --annotation, buildx syntax: manifest (default), index, descriptors, [PLATFORM] filters.
printf 'FROM scratch\nCOPY Dockerfile.url /\n' >"$ctx/Dockerfile.ann"
ocib_ok ann1 build -f "$ctx/Dockerfile.ann" --annotation org.example.a=1 --annotation "manifest-descriptor:org.example.d=2" \
  -o type=oci-layout,dest="$T/ann1",annotation.org.example.o=5 "$ctx"
assert_eq "$(jq -r '.annotations["org.example.a"]' "$(oci_manifest "$T/ann1")")" 1 "manifest annotation"
assert_eq "$(jq -r '.annotations["org.example.o"]' "$(oci_manifest "$T/ann1")")" 5 "annotation.K= of an -o output"
assert_eq "$(jq -r '.manifests[0].annotations["org.example.d"]' "$T/ann1/index.json")" 2 "manifest-descriptor annotation"
ocib_ok ann2 build -f "$ctx/Dockerfile.ann" --platform linux/amd64,linux/arm64 --annotation "index:org.example.i=3" \
  --annotation "manifest[linux/arm64]:org.example.arm=yes" --annotation "index-descriptor:org.example.id=4" \
  -o type=oci-layout,dest="$T/ann2" "$ctx"
idx=$(oci_blob "$T/ann2" "$(jq -r '.manifests[0].digest' "$T/ann2/index.json")")
assert_eq "$(jq -r '.annotations["org.example.i"]' "$idx")" 3 "index annotation"
assert_eq "$(jq -r '.manifests[0].annotations["org.example.id"]' "$T/ann2/index.json")" 4 "index-descriptor annotation"
for d in $(jq -r '.manifests[].digest' "$idx"); do
  m=$(oci_blob "$T/ann2" "$d")
  arch=$(jq -r .architecture "$(oci_blob "$T/ann2" "$(jq -r .config.digest "$m")")")
  want=$([[ $arch == arm64 ]] && echo yes || echo null)
  assert_eq "$(jq -r '.annotations["org.example.arm"] // "null"' "$m")" "$want" "platform-filtered annotation on $arch"
done
rc=0; ocib_run ann3 build --annotation "manfest:k=v" "$ctx" || rc=$?
assert_eq "$rc" 2 "exit status for a bad --annotation type"
assert_file_contains "$T/ann3.err" 'did you mean "manifest"?'

# stdin as docker build / buildx take it: -f - (the Dockerfile), - (a tar context, or a
# Dockerfile with an empty context); names in a context tar cannot leave it.
printf 'FROM scratch\nCOPY busybox /from-stdin-dockerfile\n' | "$OCIB" build -f - -o type=local,dest="$T/s1" "$ctx" 2>"$T/s1.err" ||
  fail "-f - failed: $(tail -3 "$T/s1.err")"
[[ -f $T/s1/from-stdin-dockerfile ]] || fail "-f -: file missing"
mkdir -p "$T/tctx" && cp "$ctx/busybox" "$T/tctx/" && printf 'FROM scratch\nCOPY busybox /from-stdin-context\n' >"$T/tctx/Dockerfile"
tar -C "$T/tctx" -c . | "$OCIB" build -o type=local,dest="$T/s2" - 2>"$T/s2.err" || fail "- (tar) failed: $(tail -3 "$T/s2.err")"
[[ -f $T/s2/from-stdin-context ]] || fail "- (tar context): file missing"
printf 'FROM scratch\nCOPY busybox /x\n' | "$OCIB" build -o type=local,dest="$T/s3" - 2>"$T/s3.err" && fail "a Dockerfile on stdin has a context"
assert_file_contains "$T/s3.err" 'Dockerfile:2: COPY failed: "busybox": not found in build context'
python3 -c 'import io, sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
i = tarfile.TarInfo("../escaped-from-context"); i.size = 1; t.addfile(i, io.BytesIO(b"x")); t.close()' >"$T/evil.tar"
rc=0; "$OCIB" build - <"$T/evil.tar" 2>"$T/s4.err" || rc=$?
assert_eq "$rc" 2 "exit status for a context tar escaping its directory"
[[ ! -e /tmp/escaped-from-context && ! -e $T/escaped-from-context ]] || fail "a context tar wrote outside its directory"
log "ok"
