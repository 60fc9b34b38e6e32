#!/usr/bin/env bash
# ocib bake: three targets sharing a base stage build in one run on one store. The base's
# RUN reports itself to a loopback HTTP server: it must run once for all three, its progress
# line names all three targets, every image is right, and a second bake is fully cached.
# Then the HCL, JSON and compose forms of one definition print the same resolved JSON, and
# --set, inherits, matrix, variables from the environment, group selection and the usage
# errors (unknown target, malformed HCL) behave as buildx's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd python3 curl

ctx="$T/proj"
make_ctx "$ctx"
echo worker >"$ctx/worker.txt"
cat >"$ctx/app.Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
ARG PORT
RUN --network=host wget -q -O /shared.txt "http://127.0.0.1:$PORT/shared" && echo base > /base

FROM base AS web
RUN echo web > /who

FROM base AS api
RUN echo api > /who

FROM base AS worker
COPY worker.txt /who
DF
mkdir -p "$T/www"
echo shared-payload >"$T/www/shared"
start_http "$T/www"

cat >"$ctx/docker-bake.hcl" <<HCL
variable "TAG" {
  default = "1"
}
variable "PORT" {
  default = "0"
}
group "default" {
  targets = ["web", "api", "worker"]
}
group "backend" {
  targets = ["api", "worker"]
}
target "_common" {
  dockerfile = "app.Dockerfile"
  args = {
    PORT = "\${PORT}"
  }
}
target "web" {
  inherits = ["_common"]
  target = "web"
  tags = ["web:\${TAG}"]
  output = ["type=oci,dest=$T/web.tar"]
}
target "api" {
  inherits = ["_common"]
  target = "api"
  tags = ["api:\${TAG}"]
  output = ["type=oci,dest=$T/api.tar"]
}
target "worker" {
  inherits = ["_common"]
  target = "worker"
  tags = ["worker:\${TAG}"]
  output = ["type=oci,dest=$T/worker.tar"]
}
HCL

runs() { grep -c 'GET /shared' "$T/http.log" || true; }

# layer_file LAYOUT INDEX PATH: a file's content in layer INDEX (-1: the last).
layer_file() {
  local m d p
  m=$(oci_manifest "$1")
  d=$(jq -r ".layers[$2].digest" "$m")
  p=$(oci_blob "$1" "$d")
  tar -xzOf "$p" "$3" 2>/dev/null || tar -xOf "$p" "$3"
}

# ---- the acceptance: one run, the shared RUN once, three right images -------------------
cd "$ctx"
PORT=$HTTP_PORT ocib_ok bake1 bake --progress=plain --allow network.host --metadata-file "$T/meta1.json"
assert_eq "$(runs)" 1 "executions of the shared RUN in the first bake"
# Its progress line names all three targets.
grep -E '^#[0-9]+ \[(web|api|worker),(web|api|worker),(web|api|worker) base [0-9]+/[0-9]+\] RUN --network=host wget' "$T/bake1.err" >/dev/null ||
  { show_err bake1; fail "the shared RUN's progress line does not name all three targets"; }
grep -qi 'critical path' "$T/bake1.err" || { show_err bake1; fail "no summary with the critical path"; }
[[ $(grep -ci 'critical path' "$T/bake1.err") -eq 1 ]] || fail "expected one summary for the whole bake"
for t in web api worker; do
  oci_extract "$T/$t.tar" "$T/l-$t"
  assert_eq "$(oci_ref "$T/l-$t")" "1" "$t's image's ref.name"
  assert_eq "$(jq -r --arg t "$t" '.[$t]["image.name"]' "$T/meta1.json")" "$t:1" "$t's image name"
  oci_validate "$T/l-$t" 1
  assert_eq "$(layer_file "$T/l-$t" -1 who)" "$t" "/who in $t's image"
  assert_eq "$(layer_file "$T/l-$t" -2 shared.txt)" "shared-payload" "/shared.txt in $t's image"
  assert_eq "$(jq -r --arg t "$t" '.[$t]["containerimage.digest"] | startswith("sha256:")' "$T/meta1.json")" true \
    "metadata of $t"
done
# The three images share the base's layers byte for byte.
for i in 0 1 2; do
  a=$(jq -r ".layers[$i].digest" "$(oci_manifest "$T/l-web")")
  b=$(jq -r ".layers[$i].digest" "$(oci_manifest "$T/l-api")")
  assert_eq "$a" "$b" "base layer $i of web and api"
done
# In the metadata every key ran (cached=false) exactly once over all targets.
jq '[.[] | .["ocib.vertices"][]] | group_by(.key) | map(select((map(select(.cached == false)) | length) != 1)) | length' \
  "$T/meta1.json" >"$T/badkeys"
assert_eq "$(cat "$T/badkeys")" 0 "keys that did not run exactly once"

# Each target is tagged in the store under its own name.
ocib_ok images images
for t in web api worker; do
  assert_eq "$(awk -v n="$t:1" '$1 == n {print $2}' "$T/images.out")" \
    "$(jq -r --arg t "$t" '.[$t]["containerimage.digest"]' "$T/meta1.json")" "store tag $t:1"
done

# A second bake is fully cached.
PORT=$HTTP_PORT ocib_ok bake2 bake --progress=plain --allow network.host --metadata-file "$T/meta2.json" \
  --timeline "$T/timeline.html"
assert_eq "$(runs)" 1 "executions of the shared RUN after the second bake"
assert_eq "$(jq '[.[] | .["ocib.vertices"][] | select(.cached == false)] | length' "$T/meta2.json")" 0 \
  "steps that ran in the second bake"
for t in web api worker; do
  assert_eq "$(jq -r --arg t "$t" '.[$t]["containerimage.digest"]' "$T/meta2.json")" \
    "$(jq -r --arg t "$t" '.[$t]["containerimage.digest"]' "$T/meta1.json")" "$t's digest on the cached bake"
done

# The timeline is one chart of every target's steps.
sed -n 's|.*<script type="application/json" id="ocib-metadata">\(.*\)</script>.*|\1|p' "$T/timeline.html" >"$T/timeline.json"
assert_eq "$(jq -r '[.["ocib.vertices"][].target] | unique | join(",")' "$T/timeline.json")" "api,web,worker" \
  "targets on the timeline"

# -j 1 bounds the whole bake: with --no-cache no two steps of any targets overlap.
PORT=$HTTP_PORT ocib_ok bake3 bake --progress=plain --allow network.host -j 1 --no-cache --metadata-file "$T/meta3.json" backend
assert_eq "$(runs)" 2 "executions of the shared RUN with --no-cache"
jq '[.[] | .["ocib.vertices"][] | select(.cached == false)] | sort_by(.started) |
    [range(1; length) as $i | select(.[$i].started < .[$i - 1].completed - 0.05)] | length' "$T/meta3.json" >"$T/overlaps"
assert_eq "$(cat "$T/overlaps")" 0 "overlapping steps under -j 1"
assert_eq "$(jq -r 'keys | join(",")' "$T/meta3.json")" "api,worker" "targets of the group backend"

# --push: each target to its own tags on a loopback registry, from the cache.
if [[ -x /usr/bin/docker-registry ]]; then
  start_registry "$T/registry"
  PORT=$HTTP_PORT ocib_ok push bake --progress=plain --allow network.host --insecure-registry "$REG" --push \
    --set "web.tags=$REG/bake/web:1" --set "api.tags=$REG/bake/api:1" --set "worker.tags=$REG/bake/worker:1" \
    --set '*.output=type=oci,dest=/dev/null' --metadata-file "$T/metapush.json"
  assert_eq "$(runs)" 2 "executions of the shared RUN after the push"
  for t in web api worker; do
    code=$(curl -s -o "$T/m-$t.json" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.index.v1+json' \
      -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/bake/$t/manifests/1")
    assert_eq "$code" 200 "manifest of $t in the registry"
  done
else
  log "docker-registry not installed: --push not checked"
fi

# ---- --print: the three formats agree -------------------------------------------------------
mkdir -p "$T/fmt/hcl" "$T/fmt/json" "$T/fmt/compose"
cat >"$T/fmt/hcl/docker-bake.hcl" <<'HCL'
variable "TAG" { default = "1" }
group "default" { targets = ["api", "web"] }
target "base" {
  dockerfile = "app.Dockerfile"
  args = { BASE = "busybox" }
}
target "web" {
  inherits = ["base"]
  target = "web"
  tags = ["web:${TAG}"]
  platforms = ["linux/amd64"]
}
target "api" {
  inherits = ["base"]
  context = "api"
  tags = ["api:${TAG}"]
  labels = { team = "x" }
}
HCL
cat >"$T/fmt/json/docker-bake.json" <<'JSON'
{
  "variable": {"TAG": {"default": "1"}},
  "group": {"default": {"targets": ["api", "web"]}},
  "target": {
    "base": {"dockerfile": "app.Dockerfile", "args": {"BASE": "busybox"}},
    "web": {"inherits": ["base"], "target": "web", "tags": ["web:${TAG}"], "platforms": ["linux/amd64"]},
    "api": {"inherits": ["base"], "context": "api", "tags": ["api:${TAG}"], "labels": {"team": "x"}}
  }
}
JSON
cat >"$T/fmt/compose/compose.yaml" <<'YAML'
services:
  web:
    image: web:${TAG:-1}
    build:
      dockerfile: app.Dockerfile
      target: web
      platforms: [linux/amd64]
      args:
        BASE: busybox
  api:
    image: api:${TAG:-1}
    build:
      context: api
      dockerfile: app.Dockerfile
      args: [BASE=busybox]
      labels:
        team: x
  db:
    image: postgres
YAML
for f in hcl json compose; do
  (cd "$T/fmt/$f" && "$OCIB" bake --print >"$T/print-$f.json" 2>"$T/print-$f.err") ||
    { cat "$T/print-$f.err" >&2; fail "bake --print of the $f form failed"; }
  (cd "$T/fmt/$f" && TAG=9 "$OCIB" bake --print >"$T/print9-$f.json" 2>&1) || fail "bake --print with TAG=9 ($f)"
done
cmp "$T/print-hcl.json" "$T/print-json.json" || { diff "$T/print-hcl.json" "$T/print-json.json" >&2; fail "HCL and JSON print differently"; }
cmp "$T/print-hcl.json" "$T/print-compose.json" || { diff "$T/print-hcl.json" "$T/print-compose.json" >&2; fail "HCL and compose print differently"; }
cmp "$T/print9-hcl.json" "$T/print9-compose.json" || fail "HCL and compose differ with TAG=9"
# buildx's shape and defaults.
assert_eq "$(jq -c '.group' "$T/print-hcl.json")" '{"default":{"targets":["api","web"]}}' "printed groups"
assert_eq "$(jq -r '.target.web | keys_unsorted | join(",")' "$T/print-hcl.json")" \
  "context,dockerfile,args,tags,target,platforms" "attribute order of web"
assert_eq "$(jq -r '.target.web.context' "$T/print-hcl.json")" "." "default context"
# -f - reads the definition from standard input (its format told by its contents).
(cd "$T/fmt/json" && "$OCIB" bake -f - --print <docker-bake.json >"$T/print-stdin.json")
cmp "$T/print-hcl.json" "$T/print-stdin.json" || fail "bake -f - prints differently"
# A variable from the environment.
assert_eq "$(jq -r '.target.web.tags[0]' "$T/print9-json.json")" "web:9" "TAG from the environment"

# --set: args, tags, a pattern, +=.
(cd "$T/fmt/hcl" && "$OCIB" bake --print --set web.args.X=1 --set 'web.tags=w:2' --set 'web.tags+=w:3' \
  --set '*.platform=linux/arm64' >"$T/set.json")
assert_eq "$(jq -c '.target.web.args' "$T/set.json")" '{"BASE":"busybox","X":"1"}' "--set web.args.X"
assert_eq "$(jq -c '.target.web.tags' "$T/set.json")" '["w:2","w:3"]' "--set web.tags / +="
assert_eq "$(jq -c '[.target.api.platforms, .target.web.platforms]' "$T/set.json")" '[["linux/arm64"],["linux/arm64"]]' \
  "--set *.platform"
# Group selection prints the named target and a default group naming it.
(cd "$T/fmt/hcl" && "$OCIB" bake --print web >"$T/one.json")
assert_eq "$(jq -r '.target | keys | join(",")' "$T/one.json")" "web" "targets of bake web"
assert_eq "$(jq -c '.group.default.targets' "$T/one.json")" '["web"]' "default group of bake web"

# The default lookup reads every file found, in buildx's order: compose.yaml, then
# docker-bake.hcl, then docker-bake.override.hcl over them.
mkdir -p "$T/ov"
printf 'services:\n  app:\n    image: app:compose\n    build:\n      context: .\n      args:\n        A: compose\n' >"$T/ov/compose.yaml"
printf 'target "app" {\n  args = { B = "hcl" }\n}\n' >"$T/ov/docker-bake.hcl"
printf 'target "app" {\n  tags = ["app:override"]\n  args = { A = "override" }\n}\n' >"$T/ov/docker-bake.override.hcl"
(cd "$T/ov" && "$OCIB" bake --print >"$T/ov.json")
assert_eq "$(jq -c '.target.app | [.tags, .args]' "$T/ov.json")" '[["app:override"],{"A":"override","B":"hcl"}]' \
  "compose.yaml + docker-bake.hcl + docker-bake.override.hcl"
assert_eq "$(jq -c '.group.default.targets' "$T/ov.json")" '["app"]' "the compose file's default group"

# A matrix: one target per combination, the matrix name a group.
mkdir -p "$T/mx"
cat >"$T/mx/docker-bake.hcl" <<'HCL'
target "app" {
  matrix = {
    flavor = ["alpine", "debian"]
  }
  name = "app-${flavor}"
  args = { FLAVOR = flavor }
  tags = ["app:${flavor}"]
}
HCL
(cd "$T/mx" && "$OCIB" bake --print app >"$T/mx.json")
assert_eq "$(jq -r '.target | keys | join(",")' "$T/mx.json")" "app-alpine,app-debian" "matrix targets"
assert_eq "$(jq -r '.target["app-debian"].args.FLAVOR' "$T/mx.json")" "debian" "matrix value"
assert_eq "$(jq -c '.group.app.targets' "$T/mx.json")" '["app-alpine","app-debian"]' "matrix group"

# --check lints every target (warnings prefixed by the target, exit 1); a target's
# call = "check" lints it while the others build.
mkdir -p "$T/lint"
make_ctx "$T/lint"
printf 'FROM scratch AS base\nCOPY busybox /bin/\nFROM base AS b1\nRUN ["/bin/busybox","true"]\nFROM b1 AS b2\nRUN ["/bin/busybox","true"]\nFROM base\nCOPY --from=b1 /bin /b1\nCOPY --from=b2 /bin /b2\n' \
  >"$T/lint/Dockerfile"
printf 'FROM scratch\nCOPY busybox /bin/\n' >"$T/lint/clean.Dockerfile"
cat >"$T/lint/docker-bake.hcl" <<HCL
group "default" { targets = ["serial", "clean"] }
target "serial" {}
target "clean" {
  dockerfile = "clean.Dockerfile"
  output = ["type=oci,dest=$T/clean.tar"]
}
HCL
rc=0
(cd "$T/lint" && "$OCIB" bake --check >"$T/check.out" 2>"$T/check.err") || rc=$?
assert_eq "$rc" 1 "exit status of bake --check with a warning"
assert_file_contains "$T/check.out" '[serial] Dockerfile:5: stage "b2" builds FROM "b1"' "bake --check"
contains -F '[clean]' "$T/check.out" && fail "the clean target has warnings: $(cat "$T/check.out")"
[[ ! -e $T/clean.tar ]] || fail "bake --check built something"
rc=0
(cd "$T/lint" && "$OCIB" bake --set serial.call=check >"$T/call.out" 2>"$T/call.err") || rc=$?
assert_eq "$rc" 1 "exit status of a call=check target with a warning"
assert_file_contains "$T/call.out" '[serial] Dockerfile:5:' "call=check"
[[ -s $T/clean.tar ]] || { cat "$T/call.err" >&2; fail "the other target was not built next to the call=check one"; }

# A compose file builds too, its paths relative to its own directory (bake run elsewhere).
mkdir -p "$T/cb/svc"
make_ctx "$T/cb/svc"
printf 'FROM scratch\nARG GREETING\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","sh","-c","echo $GREETING > /greeting"]\n' >"$T/cb/svc/Dockerfile"
cat >"$T/cb/compose.yaml" <<'YAML'
services:
  hello:
    image: hello:${HELLO_TAG:-dev}
    build:
      context: svc
      args:
        GREETING: bonjour
YAML
(cd / && HELLO_TAG=3 "$OCIB" bake -f "$T/cb/compose.yaml" --progress=plain >"$T/cb.out" 2>"$T/cb.err") ||
  { cat "$T/cb.err" >&2; fail "bake of a compose file from another directory"; }
ocib_ok images2 images
contains -E '^hello:3 ' "$T/images2.out" || fail "the compose service's image is not in the store: $(cat "$T/images2.out")"

# A git URL as a target's context is checked out, its dockerfile a file in the checkout.
if command -v git >/dev/null; then
  repo="$T/repo"
  mkdir -p "$repo"
  echo from-git >"$repo/version"
  printf 'FROM scratch\nCOPY version /version\n' >"$repo/Git.Dockerfile"
  gitc() { command git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main "$@"; }
  gitc -C "$repo" init -q && gitc -C "$repo" add -A && gitc -C "$repo" commit -qm one
  gitc clone -q --bare "$repo" "$T/www/app.git" && gitc -C "$T/www/app.git" update-server-info
  mkdir -p "$T/gb"
  cat >"$T/gb/docker-bake.hcl" <<HCL
target "g" {
  context = "http://127.0.0.1:$HTTP_PORT/app.git#main"
  dockerfile = "Git.Dockerfile"
  output = ["type=oci,dest=$T/g.tar"]
}
HCL
  (cd "$T/gb" && "$OCIB" bake g --progress=plain >"$T/gb.out" 2>"$T/gb.err") || { cat "$T/gb.err" >&2; fail "bake of a git context"; }
  oci_extract "$T/g.tar" "$T/l-g"
  assert_eq "$(layer_file "$T/l-g" -1 version)" "from-git" "/version from the git context"
else
  log "git not installed: git contexts not checked"
fi

# ---- usage errors: exit 2 before any work --------------------------------------------------
rc=0
(cd "$ctx" && "$OCIB" bake wev >"$T/e1.out" 2>"$T/e1.err") || rc=$?
assert_eq "$rc" 2 "exit status of an unknown target"
assert_file_contains "$T/e1.err" 'did you mean "web"' "the unknown target's error"
printf 'target "a" {\n  tags = ["x"\n  context = "."\n}\n' >"$T/bad.hcl"
rc=0
"$OCIB" bake -f "$T/bad.hcl" --print >"$T/e2.out" 2>"$T/e2.err" || rc=$?
assert_eq "$rc" 2 "exit status of a malformed HCL file"
assert_file_contains "$T/e2.err" "$T/bad.hcl:3:" "the malformed HCL's error"
rc=0
(cd "$ctx" && "$OCIB" bake --set web.platfrom=linux/amd64 >"$T/e3.out" 2>"$T/e3.err") || rc=$?
assert_eq "$rc" 2 "exit status of a bad --set key"
assert_file_contains "$T/e3.err" 'did you mean "platform"' "the bad --set key's error"
rc=0
(cd "$ctx" && PORT=$HTTP_PORT "$OCIB" bake --no-cache --set 'api.tags=Not:A:Tag' >"$T/e5.out" 2>"$T/e5.err") || rc=$?
assert_eq "$rc" 2 "exit status of an invalid tag"
assert_file_contains "$T/e5.err" 'invalid image reference "Not:A:Tag"' "the invalid tag's error"
rc=0
(cd "$T" && "$OCIB" bake >"$T/e4.out" 2>"$T/e4.err") || rc=$?
assert_eq "$rc" 2 "exit status without a bake file"
assert_eq "$(runs)" 2 "no RUN happened during the usage errors"
