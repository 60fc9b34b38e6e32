#!/usr/bin/env bash
# The seed shape: a base stage, three independent branches, a final stage that copies
# from each. Checks branch parallelism (metadata timestamps), the archive with skopeo,
# oci-image-tool, umoci, runs it with runc, and checks the image config.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "runc run needs it"
need_cmd skopeo umoci oci-image-tool runc

ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
ENV APP_MODE=demo

FROM base AS b1
RUN sleep 1 && echo one > /one

FROM base AS b2
RUN sleep 1 && echo two > /two

FROM base AS b3
RUN sleep 1 && echo three > /three

FROM base AS final
COPY --from=b1 /one /one
COPY --from=b2 /two /two
COPY --from=b3 /three /three
ENV GREETING=hello
WORKDIR /app
LABEL org.example.scenario=seed
USER 1000:1000
CMD ["/bin/sh","-c","cat /one /two /three; echo cwd=$(pwd) uid=$(id -u) greeting=$GREETING"]
DF

cd "$T"
ocib_ok build build -t app:1 --target final -j 4 -o type=oci,dest="$T/app.tar" \
  --label org.example.by=flag --label org.example.scenario=overridden --metadata-file "$T/meta.json" --progress=plain "$ctx"

# --progress=plain goes to stderr, BuildKit-like.
grep -qE '^#[0-9]+ \[b1 [0-9]+/[0-9]+\] RUN sleep 1 && echo one > /one' "$T/build.err" ||
  { show_err build; fail "plain progress has no '#N [b1 i/n] RUN sleep 1 && echo one > /one' line"; }
grep -qE '^#[0-9]+ DONE [0-9.]+s' "$T/build.err" || { show_err build; fail "plain progress has no '#N DONE' line"; }

# Metadata: digests and overlapping branch RUNs.
[[ -f $T/meta.json ]] || fail "--metadata-file did not write $T/meta.json"
jq -e '.["containerimage.digest"] | test("^sha256:[0-9a-f]{64}$")' "$T/meta.json" >/dev/null ||
  fail "meta.json: containerimage.digest missing or malformed"
jq -e '.["containerimage.config.digest"] | test("^sha256:[0-9a-f]{64}$")' "$T/meta.json" >/dev/null ||
  fail "meta.json: containerimage.config.digest missing or malformed"
assert_eq "$(jq -r '.["image.name"]' "$T/meta.json")" "app:1" "meta.json image.name"
branch_runs='[.["ocib.vertices"][] | select((.stage == "b1" or .stage == "b2" or .stage == "b3") and (.name | test("\\] RUN ")))]'
n=$(jq "$branch_runs | length" "$T/meta.json")
[[ $n -eq 3 ]] || { jq . "$T/meta.json" >&2; fail "expected 3 branch RUN vertices in metadata, found $n"; }
if ! jq -e "$branch_runs | (map(.started) | max) < (map(.completed) | min)" "$T/meta.json" >/dev/null; then
  jq -c "$branch_runs | .[] | {name, started, completed}" "$T/meta.json" >&2
  fail "branch RUN steps did not overlap in time (max(started) >= min(completed))"
fi
log "branch RUNs overlapped"

# The archive, with the real tools.
skopeo inspect "oci-archive:$T/app.tar" >"$T/skopeo.json" 2>"$T/skopeo.err" ||
  { cat "$T/skopeo.err" >&2; fail "skopeo inspect oci-archive:$T/app.tar failed"; }
assert_eq "$(jq -r .Digest "$T/skopeo.json")" "$(jq -r '.["containerimage.digest"]' "$T/meta.json")" \
  "manifest digest (skopeo vs metadata)"
oci_extract "$T/app.tar" "$T/layout"
ref=$(oci_ref "$T/layout")
log "ref name in index.json: $ref"
oci_validate "$T/layout" "$ref"

cfg=$(oci_config "$T/layout")
assert_eq "sha256:$(sha256sum "$cfg" | cut -d' ' -f1)" "$(jq -r '.["containerimage.config.digest"]' "$T/meta.json")" \
  "config digest (blob vs metadata)"
jq -e '.config.Env | index("GREETING=hello") and index("APP_MODE=demo")' "$cfg" >/dev/null ||
  fail "config Env lacks GREETING=hello/APP_MODE=demo: $(jq -c .config.Env "$cfg")"
assert_eq "$(jq -r .config.WorkingDir "$cfg")" "/app" "config WorkingDir"
assert_eq "$(jq -r .config.User "$cfg")" "1000:1000" "config User"
# shellcheck disable=SC2016 # the Cmd is literal text
assert_eq "$(jq -c .config.Cmd "$cfg")" \
  '["/bin/sh","-c","cat /one /two /three; echo cwd=$(pwd) uid=$(id -u) greeting=$GREETING"]' "config Cmd"
# --label adds to the Dockerfile's LABELs and wins over them.
assert_eq "$(jq -r '.config.Labels["org.example.scenario"]' "$cfg")" "overridden" "config label set by LABEL and --label"
assert_eq "$(jq -r '.config.Labels["org.example.by"]' "$cfg")" "flag" "config label from --label"
assert_eq "$(jq -r .os "$cfg")/$(jq -r .architecture "$cfg")" "linux/$(host_arch)" "config os/architecture"

# Unpack and run.
umoci_unpack "$T/layout" "$ref" "$T/bundle"
runc_run "$T/bundle" "ocib-it-seed-$$" "$T/run.out"
for w in one two three "cwd=/app" "uid=1000" "greeting=hello"; do
  assert_file_contains "$T/run.out" "$w" "output of the image's CMD"
done
