#!/usr/bin/env bash
# Dockerfile features end to end: ARG/ENV expansion with --build-arg, COPY --chmod of a
# directory's contents, .dockerignore exclusions with a `!` exception (also out of the cache
# key), COPY heredoc with expansion, RUN heredoc script, heredoc fed to a command, USER by name
# resolved through the image's /etc/passwd, and a parse error rendered with line and caret.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd umoci

ctx="$T/ctx"
make_ctx "$ctx"
mkdir -p "$ctx/app/secret"
echo keep >"$ctx/app/keep.txt"
echo s3cr3t >"$ctx/app/secret/key"
echo noise >"$ctx/app/skip.log"
echo important >"$ctx/app/important.log"
printf 'app/secret\n**/*.log\n!app/important.log\n' >"$ctx/.dockerignore"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
ARG NAME=world
ENV GREETING="hello ${NAME}"
COPY --chmod=0751 app/ /app/
COPY <<EOF /etc/motd
$GREETING from heredoc
EOF
COPY <<EOF /etc/passwd
root:x:0:0:root:/root:/bin/sh
builder:x:1234:4321::/home/builder:/bin/sh
EOF
RUN <<EOT
set -e
echo "script ran: $GREETING" > /ran
mkdir -m 1777 /tmp
EOT
RUN cat <<EOF > /cat.txt
via cat
EOF
USER builder
RUN id -u > /tmp/uid && id -g > /tmp/gid
EXPOSE 80 8000-8002/udp
DOCKERFILE

export OCIB_ROOT="$T/store"
ocib_ok b1 build --build-arg NAME=ocib -t fe:1 -o type=oci,dest="$T/fe.tar" --metadata-file "$T/m1.json" "$ctx"
oci_extract "$T/fe.tar" "$T/lay"
umoci_unpack "$T/lay" "$(oci_ref "$T/lay")" "$T/b"
r="$T/b/rootfs"
assert_eq "$(cat "$r/etc/motd")" "hello ocib from heredoc" "COPY heredoc with expansion"
assert_eq "$(cat "$r/ran")" "script ran: hello ocib" "RUN heredoc script"
assert_eq "$(cat "$r/cat.txt")" "via cat" "heredoc fed to a command"
assert_eq "$(cat "$r/tmp/uid"):$(cat "$r/tmp/gid")" "1234:4321" "USER builder resolved through /etc/passwd"
[[ -f $r/app/keep.txt && -f $r/app/important.log ]] || fail "included files missing: $(find "$r/app")"
[[ ! -e $r/app/secret && ! -e $r/app/skip.log ]] || fail ".dockerignore'd files landed in the image: $(find "$r/app")"
assert_eq "$(stat -c %a "$r/app/keep.txt")" 751 "COPY --chmod mode"
jq -c '.config.Env' "$(oci_config "$T/lay")" | contains '"GREETING=hello ocib"' || fail "ENV not expanded in config"
assert_eq "$(jq -c '.config.ExposedPorts | keys' "$(oci_config "$T/lay")")" '["80/tcp","8000/udp","8001/udp","8002/udp"]' "EXPOSE with a port range"

# An ignored file changes no cache key: editing it re-runs nothing.
echo changed >"$ctx/app/secret/key"
ocib_ok b2 build --build-arg NAME=ocib -t fe:1 -o type=oci,dest="$T/fe2.tar" --metadata-file "$T/m2.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false)] | length' "$T/m2.json") == 0 ]] ||
  fail "editing an ignored file re-ran steps"
# A different build-arg changes the ENV, hence the RUN steps that can see it.
ocib_ok b3 build --build-arg NAME=other -t fe:1 -o type=oci,dest="$T/fe3.tar" --metadata-file "$T/m3.json" "$ctx"
[[ $(jq '[.["ocib.vertices"][] | select(.cached == false and (.name | test("RUN")))] | length' "$T/m3.json") -ge 1 ]] ||
  fail "changing NAME re-ran no RUN step"

# A misspelt flag: file, line and column, a suggestion and a caret.
printf 'FROM scratch\nCOPY --frm=x a b\n' >"$ctx/Dockerfile.bad"
if ocib_run bad build -f "$ctx/Dockerfile.bad" -o type=oci,dest="$T/bad.tar" "$ctx"; then fail "bad flag accepted"; fi
grep -q 'Dockerfile.bad:2:6: unknown flag: --frm for COPY (did you mean from?)' "$T/bad.err" ||
  fail "unexpected error text: $(cat "$T/bad.err")"
grep -q '\^' "$T/bad.err" || fail "no caret under the error: $(cat "$T/bad.err")"
