#!/usr/bin/env bash
# Outputs and reproducibility: docker-archive (read back by skopeo), local directory, plain
# filesystem tar (also to stdout), --iidfile, zstd and uncompressed layers (validated), and two
# builds with SOURCE_DATE_EPOCH into two different stores giving the same manifest digest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd skopeo oci-image-tool zstd

ctx="$T/ctx"
make_ctx "$ctx"
echo data >"$ctx/data.txt"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
FROM base AS side
RUN echo side > /side && mkdir -p /d && echo x > /d/x
FROM base
COPY data.txt /data.txt
COPY --from=side /side /side
RUN rm /bin/vi && ln -s /data.txt /link && mkdir /dir && chmod 700 /dir
CMD ["/bin/cat", "/data.txt"]
DOCKERFILE

export OCIB_ROOT="$T/store1"
ocib_ok b1 build -t out:1 --iidfile "$T/iid" --metadata-file "$T/m1.json" \
  -o type=docker,dest="$T/docker.tar" -o type=local,dest="$T/local" -o type=tar,dest="$T/fs.tar" "$ctx"
assert_eq "$(cat "$T/iid")" "$(jq -r '.["containerimage.config.digest"]' "$T/m1.json")" "--iidfile holds the config digest"
# buildx's metadata: the manifest's descriptor; -q prints the same ID as --iidfile.
assert_eq "$(jq -r '.["containerimage.descriptor"] | .mediaType + " " + .digest' "$T/m1.json")" \
  "application/vnd.oci.image.manifest.v1+json $(jq -r '.["containerimage.digest"]' "$T/m1.json")" "containerimage.descriptor"
[[ $(jq -r '.["containerimage.descriptor"].size' "$T/m1.json") -gt 0 ]] || fail "descriptor size"
assert_eq "$(jq -r '.["image.name"]' "$T/m1.json")" "out:1" "image.name"
"$OCIB" build -q -t out:1 --iidfile "$T/iid-q" "$ctx" >"$T/q.out" 2>/dev/null || fail "ocib build -q failed"
assert_eq "$(cat "$T/q.out")" "$(cat "$T/iid-q")" "-q prints the --iidfile ID"

# docker-archive: skopeo reads it and copies it into an OCI layout that validates.
skopeo inspect "docker-archive:$T/docker.tar" >"$T/dinspect.json" || fail "skopeo cannot read the docker-archive"
tar -xOf "$T/docker.tar" manifest.json | jq -e '.[0].RepoTags == ["out:1"]' >/dev/null || fail "manifest.json lacks RepoTags out:1"
skopeo copy -q "docker-archive:$T/docker.tar" "oci:$T/fromdocker:x" || fail "skopeo copy from docker-archive failed"
oci_validate "$T/fromdocker" x

# local: the merged filesystem, whiteouts applied.
assert_eq "$(cat "$T/local/data.txt")" data "local output content"
assert_eq "$(cat "$T/local/side")" side "local output COPY --from content"
[[ ! -e $T/local/bin/vi ]] || fail "a deleted file is present in the local output"
[[ -L $T/local/link && $(readlink "$T/local/link") == /data.txt ]] || fail "symlink not exported"
assert_eq "$(stat -c %a "$T/local/dir")" 700 "directory mode in local output"
[[ ! -e $T/local/proc && ! -e $T/local/dev ]] || fail "sandbox mountpoints leaked into the filesystem"

# tar: one plain tar of the same filesystem; also to stdout.
tar -tf "$T/fs.tar" | contains -x 'data.txt' || fail "fs.tar lacks data.txt"
! tar -tf "$T/fs.tar" | contains 'bin/vi$' || fail "fs.tar contains the deleted bin/vi"
"$OCIB" build -q -o type=tar,dest=- "$ctx" 2>/dev/null >"$T/stdout.tar" || fail "type=tar,dest=- failed"
cmp -s <(tar -tf "$T/fs.tar" | sort) <(tar -tf "$T/stdout.tar" | sort) || fail "dest=- tar differs from the file output"

# Compression variants: media types and validation.
for c in zstd uncompressed gzip; do
  ocib_ok "c-$c" build -t out:1 -o "type=oci,dest=$T/$c.tar,compression=$c" "$ctx"
  oci_extract "$T/$c.tar" "$T/lay-$c"
  skopeo inspect "oci-archive:$T/$c.tar" >/dev/null || fail "skopeo cannot read the compression=$c archive"
  if [[ $c == zstd ]]; then
    # Debian's oci-image-tool predates the zstd media type; check each layer's diff_id instead.
    m=$(oci_manifest "$T/lay-$c")
    cfg=$(oci_config "$T/lay-$c")
    n=$(jq '.layers | length' "$m")
    for ((i = 0; i < n; i++)); do
      got=$(zstd -dc <"$(oci_blob "$T/lay-$c" "$(jq -r ".layers[$i].digest" "$m")")" | sha256sum | cut -d' ' -f1)
      assert_eq "sha256:$got" "$(jq -r ".rootfs.diff_ids[$i]" "$cfg")" "diff_id of zstd layer $i"
    done
  else
    oci_validate "$T/lay-$c" "$(oci_ref "$T/lay-$c")"
  fi
  mt=$(jq -r '.layers[0].mediaType' "$(oci_manifest "$T/lay-$c")")
  case $c in
    zstd) want=application/vnd.oci.image.layer.v1.tar+zstd ;;
    uncompressed) want=application/vnd.oci.image.layer.v1.tar ;;
    gzip) want=application/vnd.oci.image.layer.v1.tar+gzip ;;
  esac
  assert_eq "$mt" "$want" "layer media type for compression=$c"
done

# Reproducible: SOURCE_DATE_EPOCH, two stores, builds at different times.
export SOURCE_DATE_EPOCH=1700000000
export OCIB_ROOT="$T/repro1"
ocib_ok r1 build -t out:1 -o type=oci,dest="$T/r1.tar" --metadata-file "$T/r1.json" "$ctx"
sleep 1.1
export OCIB_ROOT="$T/repro2"
ocib_ok r2 build -t out:1 -o type=oci,dest="$T/r2.tar" --metadata-file "$T/r2.json" "$ctx"
assert_eq "$(jq -r '.["containerimage.digest"]' "$T/r2.json")" "$(jq -r '.["containerimage.digest"]' "$T/r1.json")" "manifest digest across stores"
cmp -s "$T/r1.tar" "$T/r2.tar" || fail "the two OCI archives differ"
oci_extract "$T/r1.tar" "$T/rl"
assert_eq "$(jq -r '.created' "$(oci_config "$T/rl")")" "2023-11-14T22:13:20Z" "created from SOURCE_DATE_EPOCH"

# A no-op rebuild to the same archive skips rewriting it; a damaged archive is rewritten.
ocib_ok r3 build -t out:1 -o type=oci,dest="$T/r2.tar" --progress=plain "$ctx"
grep -q "output unchanged: $T/r2.tar" "$T/r3.err" || fail "unchanged archive was rewritten"
cmp -s "$T/r1.tar" "$T/r2.tar" || fail "skipped archive differs"
echo garbage >>"$T/r2.tar"
ocib_ok r4 build -t out:1 -o type=oci,dest="$T/r2.tar" --progress=plain "$ctx"
! grep -q "output unchanged" "$T/r4.err" || fail "a modified archive was not rewritten"
cmp -s "$T/r1.tar" "$T/r2.tar" || fail "rewritten archive differs from the original"

# dest=- streams oci and docker archives to stdout.
"$OCIB" build -q -o type=oci,dest=- "$ctx" 2>/dev/null >"$T/stdout-oci.tar" || fail "type=oci,dest=- failed"
tar -tf "$T/stdout-oci.tar" | contains -x index.json || fail "oci archive on stdout lacks index.json"
"$OCIB" build -q -o type=docker,dest=- "$ctx" 2>/dev/null >"$T/stdout-docker.tar" || fail "type=docker,dest=- failed"
skopeo inspect "docker-archive:$T/stdout-docker.tar" >/dev/null || fail "docker archive from stdout unreadable"
[[ ! -e ./- && ! -e $ctx/- ]] || fail "dest=- created a file named -"

# A destination that is a FIFO or a device is written in place, never replaced by a file (a
# temp file renamed over /dev/null would turn the device into a regular file); a FIFO written
# twice gets the archive twice (no "unchanged" skip for what cannot be read back); the same
# for --metadata-file.
mkfifo "$T/fifo" "$T/mfifo"
for type in oci docker oci; do
  cat "$T/fifo" >"$T/fifo-$type.tar" &
  reader=$!
  cat "$T/mfifo" >"$T/fifo-$type.json" &
  mreader=$!
  ocib_ok "fifo-$type" build -t out:1 -o type=$type,dest="$T/fifo" --metadata-file "$T/mfifo" "$ctx"
  wait "$reader" "$mreader"
  [[ -p $T/fifo && -p $T/mfifo ]] || fail "type=$type,dest=FIFO replaced a FIFO: $(ls -l "$T/fifo" "$T/mfifo")"
  tar -tf "$T/fifo-$type.tar" | contains -x -e manifest.json -e index.json || fail "type=$type archive through a FIFO unreadable"
  jq -e '.["containerimage.digest"]' "$T/fifo-$type.json" >/dev/null || fail "--metadata-file through a FIFO: $(cat "$T/fifo-$type.json")"
done
