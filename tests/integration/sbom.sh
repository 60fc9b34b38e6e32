#!/usr/bin/env bash
# --sbom=true on an image holding each kind of package the scanner reads, made with the real
# tools where there are some: an rpm sqlite db made by Debian's rpm (rpmbuild of two tiny noarch
# packages, `rpm -i --justdb` into the image's /usr/lib/sysimage/rpm, /var/lib/rpm a symlink to
# it as on Fedora), a real Go binary (Debian's docker-registry, GOPATH-built: only its toolchain)
# and a copy of it whose modinfo is rewritten in place to list modules, an installed
# node_modules tree beside its package-lock.json, a lockfile without node_modules, and a
# dist-info METADATA. Later steps delete a package (a whiteout) and replace a dist-packages
# directory (an opaque directory): the SBOM lists what the image's merged view shows. A symlink
# pointing out of the image is not followed. Then the same build rootless, with the rpm db
# owned by a subordinate id and mode 0600: the sandboxed scan still reads it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd jq rpm rpmbuild python3 strings

ctx="$T/ctx"
make_ctx "$ctx"

# ---- an rpm db made by rpm -------------------------------------------------------------------
mkdir -p "$T/rpm"
cat >"$T/rpm/a.spec" <<'SPEC'
Name: ocib-sbom-test
Version: 1.2.3
Release: 4.fc40
Epoch: 2
Summary: a test package
License: MIT
BuildArch: noarch
%description
test
%files
SPEC
cat >"$T/rpm/b.spec" <<'SPEC'
Name: hello-rpm
Version: 0.9
Release: 1
Summary: another test package
License: MIT
BuildArch: noarch
%description
test
%files
SPEC
for s in a b; do
  rpmbuild --define "_topdir $T/rpm/top" -bb "$T/rpm/$s.spec" >"$T/rpm/$s.log" 2>&1 || { tail "$T/rpm/$s.log" >&2; fail "rpmbuild $s.spec failed"; }
done
db="$ctx/root/usr/lib/sysimage/rpm"
mkdir -p "$db"
rpm --define '_db_backend sqlite' --dbpath "$db" --initdb || fail "rpm --initdb failed"
rpm --define '_db_backend sqlite' --dbpath "$db" -i --nodeps --justdb --noscripts "$T"/rpm/top/RPMS/noarch/*.rpm \
  >"$T/rpm/install.log" 2>&1 || { cat "$T/rpm/install.log" >&2; fail "rpm -i --justdb failed"; }
[[ -f $db/rpmdb.sqlite ]] || fail "rpm did not make an sqlite db: $(ls "$db")"
rpm --dbpath "$db" -qa --qf '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n' | sort >"$T/rpm-qa"
assert_eq "$(cat "$T/rpm-qa")" $'hello-rpm 0.9-1\nocib-sbom-test 2:1.2.3-4.fc40' "rpm -qa of the test db"
rm -f "$db"/rpmdb.sqlite-shm "$db"/.rpm.lock
mkdir -p "$ctx/root/var/lib" "$ctx/root/etc" "$ctx/root/usr/lib"
ln -s ../../usr/lib/sysimage/rpm "$ctx/root/var/lib/rpm"
printf 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n' >"$ctx/root/usr/lib/os-release"
ln -s ../usr/lib/os-release "$ctx/root/etc/os-release"

# ---- Go binaries -----------------------------------------------------------------------------
gobin=/usr/bin/docker-registry
[[ -x $gobin ]] || skip "$gobin (a Go binary, from docker-registry) is missing"
# What the binary says of itself, as strings shows it: the main package's path.
go_path=$(strings -n 6 "$gobin" | sed -n 's/^.*path\t\(github.com[^\t]*\)$/\1/p' | head -n 1)
[[ -n $go_path ]] || fail "strings shows no modinfo path line in $gobin"
mkdir -p "$ctx/root/usr/bin" "$ctx/root/usr/local/bin"
cp "$gobin" "$ctx/root/usr/bin/docker-registry"
# The Go version and a module-mode copy, rewritten in place (same length) by a small oracle
# that reads the buildinfo as debug/buildinfo documents it.
python3 - "$gobin" "$ctx/root/usr/local/bin/goapp" >"$T/go_version" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
at = data.find(b'\xff Go buildinf:')
assert at >= 0 and at % 16 == 0 and data[at + 15] & 2, "no Go >= 1.18 build info"
def uvarint(p):
    x = s = 0
    while True:
        b = data[p]; p += 1; x |= (b & 0x7f) << s; s += 7
        if b < 0x80:
            return x, p
n, p = uvarint(at + 32)
print(data[p:p + n].decode())
p += n
n, p = uvarint(p)
old = data[p:p + n]
start, end = old[:16], old[-16:]
body = (b'path\texample.com/sbomtest\n'
        b'mod\texample.com/sbomtest\tv1.4.0\t\n'
        b'dep\tgithub.com/pkg/errors\tv0.9.1\t\n'
        b'dep\tgolang.org/x/sys\tv0.1.0\t\n'
        b'=>\tgithub.com/fork/sys\tv0.2.0\t\n')
pad = n - 32 - len(body) - len(b'build\tX=\n')
assert pad >= 0, "the binary's modinfo is too short to rewrite"
new = start + body + b'build\tX=' + b'y' * pad + b'\n' + end
assert len(new) == n
data[p:p + n] = new
open(sys.argv[2], 'wb').write(data)
PY
chmod 0755 "$ctx/root/usr/local/bin/goapp"
go_version=$(cat "$T/go_version")
[[ $go_version == go1.* ]] || fail "no Go version read from $gobin: $go_version"
# The same bytes without an exec bit are not looked at.
cp "$ctx/root/usr/local/bin/goapp" "$ctx/root/usr/local/bin/goapp.data"
chmod 0644 "$ctx/root/usr/local/bin/goapp.data"

# ---- npm and python --------------------------------------------------------------------------
nm="$ctx/root/app/node_modules"
mkdir -p "$nm/left-pad" "$nm/@types/node" "$nm/removed" "$nm/left-pad/node_modules/nested"
echo '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}' >"$nm/left-pad/package.json"
echo '{"name":"@types/node","version":"20.11.5"}' >"$nm/@types/node/package.json"
echo '{"name":"nested","version":"0.0.7"}' >"$nm/left-pad/node_modules/nested/package.json"
echo '{"name":"removed","version":"1.0.0"}' >"$nm/removed/package.json"
echo '{"name":"app","version":"3.0.0","private":true}' >"$ctx/root/app/package.json"
cat >"$ctx/root/app/package-lock.json" <<'JSON'
{"name": "app", "version": "3.0.0", "lockfileVersion": 3, "packages": {
  "": {"name": "app", "version": "3.0.0"},
  "node_modules/left-pad": {"version": "1.3.0"},
  "node_modules/only-in-lock": {"version": "9.9.9"}}}
JSON
ln -s /etc "$nm/evil"  # out of the image (in the sandbox: the view's own /etc): not followed
mkdir -p "$ctx/root/srv"
cat >"$ctx/root/srv/package-lock.json" <<'JSON'
{"name": "srv", "lockfileVersion": 2, "packages": {
  "": {"name": "srv"},
  "node_modules/express": {"version": "4.18.2"}}}
JSON
py="$ctx/root/usr/lib/python3/dist-packages"
mkdir -p "$py/requests-2.31.0.dist-info" "$ctx/root/usr/local/lib/python3.11/site-packages/old-1.0.dist-info"
printf 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\n\nName: not-a-header\n' >"$py/requests-2.31.0.dist-info/METADATA"
printf 'Metadata-Version: 2.1\nName: old\nVersion: 1.0\n' >"$ctx/root/usr/local/lib/python3.11/site-packages/old-1.0.dist-info/METADATA"
chmod -R a+rX "$ctx"

cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
COPY root/ /
# A whiteout: the package is deleted in a later layer.
RUN ["/bin/busybox", "rm", "-rf", "/app/node_modules/removed"]
# An opaque directory: site-packages replaced whole in one step; what was below is gone.
RUN ["/bin/busybox", "sh", "-c", "d=/usr/local/lib/python3.11/site-packages; /bin/busybox rm -rf $d && /bin/busybox mkdir -p $d/new-2.0.dist-info && /bin/busybox printf 'Name: new\\nVersion: 2.0\\n' > $d/new-2.0.dist-info/METADATA"]
ARG OWNER=0
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox chown $OWNER:$OWNER /usr/lib/sysimage/rpm/rpmdb.sqlite && /bin/busybox chmod 0600 /usr/lib/sysimage/rpm/rpmdb.sqlite"]
DF

# sbom_of NAME ARCHIVE: the SPDX document of the (single-platform) OCI archive, into $T/NAME.spdx.json.
sbom_of() {
  local lay="$T/$1-lay" idx att layer
  oci_extract "$2" "$lay"
  idx=$(jq -r '.manifests[0].digest' "$lay/index.json")
  att=$(jq -r '.manifests[] | select(.annotations."vnd.docker.reference.type" == "attestation-manifest") | .digest' "$lay/blobs/sha256/${idx#sha256:}")
  [[ -n $att ]] || fail "$1: no attestation manifest"
  layer=$(jq -r '.layers[] | select(.annotations."in-toto.io/predicate-type" == "https://spdx.dev/Document") | .digest' "$lay/blobs/sha256/${att#sha256:}")
  [[ -n $layer ]] || fail "$1: no SPDX layer"
  jq .predicate "$lay/blobs/sha256/${layer#sha256:}" >"$T/$1.spdx.json"
}

v=${go_version#go}
want=$(cat <<EOF
pkg:golang/example.com/sbomtest@v1.4.0 /usr/local/bin/goapp
pkg:golang/github.com/fork/sys@v0.2.0 /usr/local/bin/goapp
pkg:golang/github.com/pkg/errors@v0.9.1 /usr/local/bin/goapp
pkg:golang/stdlib@$v /usr/bin/docker-registry
pkg:golang/stdlib@$v /usr/local/bin/goapp
pkg:npm/%40types/node@20.11.5 /app/node_modules/@types/node/package.json
pkg:npm/express@4.18.2 /srv/package-lock.json
pkg:npm/left-pad@1.3.0 /app/node_modules/left-pad/package.json
pkg:npm/nested@0.0.7 /app/node_modules/left-pad/node_modules/nested/package.json
pkg:pypi/new@2.0 /usr/local/lib/python3.11/site-packages/new-2.0.dist-info/METADATA
pkg:pypi/requests@2.31.0 /usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA
pkg:rpm/fedora/hello-rpm@0.9-1?arch=noarch /usr/lib/sysimage/rpm/rpmdb.sqlite
pkg:rpm/fedora/ocib-sbom-test@1.2.3-4.fc40?arch=noarch&epoch=2 /usr/lib/sysimage/rpm/rpmdb.sqlite
EOF
)

# check NAME: the SBOM lists exactly the packages above, with SPDX fields as expected.
check() {
  local s="$T/$1.spdx.json"
  assert_eq "$(jq -r .spdxVersion "$s")" "SPDX-2.3" "$1: SPDX version"
  jq -r '.packages[] | (.externalRefs[0].referenceLocator) + " " + (.sourceInfo | sub("^acquired package info from "; ""))' "$s" | sort >"$T/$1.got"
  diff <(echo "$want" | sort) "$T/$1.got" >"$T/$1.diff" || fail "$1: the SBOM's packages differ (want < > got): $(cat "$T/$1.diff")"
  assert_eq "$(jq -r '.packages[] | select(.name == "ocib-sbom-test") | .versionInfo' "$s")" "2:1.2.3-4.fc40" "$1: rpm versionInfo as rpm -q prints it"
  assert_eq "$(jq -r '.packages[] | select(.name == "stdlib") | .versionInfo' "$s" | sort -u)" "$go_version" "$1: Go toolchain version"
  assert_eq "$(jq -r '[.packages[].SPDXID] | length == (unique | length)' "$s")" "true" "$1: SPDX ids are unique"
  assert_eq "$(jq -r '[.relationships[] | select(.relationshipType == "DESCRIBES")] | length' "$s")" "$(jq -r '.packages | length' "$s")" "$1: each package DESCRIBED"
}

ocib_ok root build --progress=plain --sbom=true -o type=oci,dest="$T/root.tar" "$ctx"
sbom_of root "$T/root.tar"
check root
# The scan's cost is reported.
contains -F "sbom: 13 packages (" "$T/root.err" || fail "no scan report in the build output: $(grep sbom "$T/root.err")"
log "root: $(grep -o 'sbom: 13 packages.*' "$T/root.err" | head -n 1)"
log "the Go binary's modinfo path per strings: $go_path"

# ---- a hostile image: garbage where the scanner looks ---------------------------------------
# A corrupt rpmdb.sqlite, a BerkeleyDB Packages, a truncated Go ELF, a FIFO named package.json,
# a package.json symlinked to a FIFO, directories nested past the walk's depth: the build
# succeeds, the SBOM lists the one good package and the SPDX comment says what was not read.
hctx="$T/hctx"
make_ctx "$hctx"
mkdir -p "$hctx/root/usr/lib/sysimage/rpm" "$hctx/root/var/lib/rpm" "$hctx/root/usr/bin" "$hctx/root/app/node_modules/ok"
{ printf 'SQLite format 3\0'; head -c 8192 /dev/urandom; } >"$hctx/root/usr/lib/sysimage/rpm/rpmdb.sqlite"
head -c 4096 /dev/zero >"$hctx/root/var/lib/rpm/Packages"
head -c 4096 "$gobin" >"$hctx/root/usr/bin/truncated-go"
chmod 0755 "$hctx/root/usr/bin/truncated-go"
echo '{"name":"ok","version":"1.0.0"}' >"$hctx/root/app/node_modules/ok/package.json"
deep=$(printf 'd/%.0s' $(seq 1 100))
chmod -R a+rX "$hctx"
cat >"$hctx/Dockerfile" <<DF
FROM scratch
COPY busybox /bin/busybox
COPY root/ /
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /app/node_modules/fifo /app/node_modules/link /$deep && /bin/busybox mkfifo /app/node_modules/fifo/package.json /tmp-fifo && /bin/busybox ln -s /tmp-fifo /app/node_modules/link/package.json"]
DF
ocib_ok hostile build --progress=plain --sbom=true -o type=oci,dest="$T/hostile.tar" "$hctx"
sbom_of hostile "$T/hostile.tar"
assert_eq "$(jq -r '[.packages[].externalRefs[0].referenceLocator] | join(" ")' "$T/hostile.spdx.json")" "pkg:npm/ok@1.0.0" "the hostile image's packages"
comment=$(jq -r '.creationInfo.comment' "$T/hostile.spdx.json")
for want_note in "/usr/lib/sysimage/rpm/rpmdb.sqlite: " "/var/lib/rpm/Packages: an rpm BerkeleyDB database, not supported" "directories (not walked)"; do
  [[ $comment == *"$want_note"* ]] || fail "the hostile image's SPDX comment lacks \"$want_note\": $comment"
done
log "hostile: $(grep -o 'sbom: [0-9]* packages.*' "$T/hostile.err" | head -n 1)"

# ---- rootless: the rpm db owned by a subordinate id, mode 0600 -------------------------------
if [[ $(id -u) -ne 0 ]] || ! command -v newuidmap >/dev/null 2>&1; then
  log "PASS (rootless part skipped: needs root and newuidmap)"
  exit 0
fi
ensure_test_user
user_area "$IT_USER"
cp -a "$ctx" "$T/u/ctx"
chown -R "$IT_USER:" "$T/u/ctx"
ocib_ok user build --progress=plain --sbom=true --build-arg OWNER=1000 -o type=oci,dest="$T/u/user.tar" "$T/u/ctx"
sbom_of user "$T/u/user.tar"
check user
# The db really is out of the user's reach on the host (a subordinate id's file, mode 0600):
# a host-side scan as the user could not have read it.
dbfile=$(find "$T/u/store" -path '*usr/lib/sysimage/rpm/rpmdb.sqlite' -perm 0600 2>/dev/null | head -n 1)
[[ -n $dbfile ]] || fail "the rootless store has no 0600 rpm db"
[[ $(stat -c %U "$dbfile") != "$IT_USER" ]] || fail "the 0600 rpm db belongs to $IT_USER itself, not a subordinate id"
if as_user "$IT_USER" cat "$dbfile" >/dev/null 2>&1; then fail "$IT_USER can read $dbfile on the host"; fi
log "user: $(grep -o 'sbom: 13 packages.*' "$T/user.err" | head -n 1)"
log PASS
