# shellcheck shell=bash
# Helpers for the ocib integration scenarios. Source it from a scenario script:
#
#   source "$(dirname "$0")/lib.sh"
#   it_setup "$@"            # $1 = path to the ocib binary
#
# Conventions: every scenario uses its own temp dir ($T, mode 755 so an unprivileged
# user can traverse it) and its own store ($OCIB_ROOT under $T). Failures print a
# reason and exit 1; a prerequisite that really cannot work exits 125 (CTest SKIP).
# Set OCIB_IT_KEEP=1 to keep $T after the run for debugging.

# Failures inside $(...) must stop the helper that runs them, too.
shopt -s inherit_errexit

IT_NAME=$(basename "$0" .sh)
IT_USER=ocib-test
T=""
OCIB=""
# Command prefix used by ocib_run (e.g. setpriv ... for the rootless scenarios).
OCIB_AS=()

log() { printf '[%s] %s\n' "$IT_NAME" "$*" >&2; }
fail() {
  printf '[%s] FAIL: %s\n' "$IT_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '[%s] SKIP: %s\n' "$IT_NAME" "$*" >&2
  exit 125
}

# contains GREP-ARGS...: grep that reads all of its input. `producer | grep -q` can kill the
# producer with SIGPIPE once it matches, and under pipefail that reads as "no match".
contains() { grep "$@" >/dev/null; }

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip "required tool '$c' not found (run scripts/install-deps.sh)"
  done
}

need_root() {
  [[ $(id -u) -eq 0 ]] || skip "must run as root (${1:-runc, useradd and setpriv need it})"
}

# Background servers (registries, HTTP) a scenario started; it_cleanup stops them.
IT_BG_PIDS=()

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

it_cleanup() {
  local rc=$? p
  for p in "${IT_BG_PIDS[@]}"; do stop_pid "$p"; done
  [[ -n $T && -d $T ]] || return 0
  # runc containers left behind by a failed assertion.
  if [[ -d $T/runc ]]; then
    local id
    for id in $(runc --root "$T/runc" list -q 2>/dev/null); do
      runc --root "$T/runc" delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  # Mounts ocib might have leaked (failure.sh asserts there are none before we get here).
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET 2>/dev/null | grep -F "$T" | sort -r)
  if [[ ${OCIB_IT_KEEP:-0} == 1 ]]; then
    log "keeping $T (OCIB_IT_KEEP=1)"
  else
    rm -rf "$T" 2>/dev/null || { chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T" || true; }
  fi
  if [[ $rc -eq 0 ]]; then log "PASS"; fi
  return 0
}

# it_setup OCIB_BINARY: temp dir, trap, private copy of the binary, private store.
it_setup() {
  [[ $# -ge 1 ]] || fail "usage: $0 PATH/TO/ocib"
  local src=$1
  [[ -f $src && -x $src ]] || fail "ocib binary '$src' not found or not executable"
  need_cmd jq tar findmnt
  [[ -x /bin/busybox ]] || skip "/bin/busybox missing (apt-get install busybox-static)"
  # ldd exits non-zero for a static executable; a dynamic busybox cannot run in FROM scratch.
  if ldd /bin/busybox >/dev/null 2>&1; then
    skip "/bin/busybox is dynamically linked (install busybox-static)"
  fi
  T=$(mktemp -d "/tmp/ocib-it-$IT_NAME.XXXXXX")
  chmod 755 "$T"
  trap it_cleanup EXIT
  # The checkout may live under /root, unreadable by the unprivileged test user.
  cp "$src" "$T/ocib"
  chmod 755 "$T/ocib"
  OCIB="$T/ocib"
  export OCIB_ROOT="$T/store"
  log "temp dir $T"
}

# make_ctx DIR: a build context holding a static busybox.
make_ctx() {
  mkdir -p "$1"
  cp /bin/busybox "$1/busybox"
  chmod -R a+rX "$1"
}

# ocib_run NAME ARGS...: runs "$OCIB" ARGS with stdout/stderr in $T/NAME.out/.err.
# Returns ocib's exit status (callers: `rc=0; ocib_run x build ... || rc=$?`).
ocib_run() {
  local name=$1
  shift
  local rc=0
  log "run: ocib $*"
  "${OCIB_AS[@]}" "$OCIB" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  return "$rc"
}

# ocib_ok NAME ARGS...: like ocib_run but a non-zero exit fails the scenario.
ocib_ok() {
  local name=$1 rc=0
  ocib_run "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "---- stderr of ocib ($name) ----"
    tail -n 60 "$T/$name.err" >&2 || true
    fail "ocib $2 ($name) exited with status $rc"
  fi
}

# show_err NAME: print the captured stderr (for context in failure messages).
show_err() {
  log "---- stderr of ocib ($1) ----"
  cat "$T/$1.err" >&2 || true
}

assert_file_contains() { # FILE FIXED-STRING [WHAT]
  grep -qF -- "$2" "$1" || {
    log "---- $1 ----"
    head -c 4000 "$1" >&2 || true
    fail "${3:-$1} does not contain '$2'"
  }
}

assert_eq() { # ACTUAL EXPECTED WHAT
  [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# ---- a loopback registry ----------------------------------------------------------------

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_http DIR: python3's http.server for DIR on a free 127.0.0.1 port; sets HTTP_PORT and
# returns once it answers. it_cleanup stops it. Call it directly, not in $(...).
start_http() {
  HTTP_PORT=$(free_port)
  python3 -m http.server --bind 127.0.0.1 --directory "$1" "$HTTP_PORT" >"$T/http.log" 2>&1 &
  IT_BG_PIDS+=("$!")
  local _
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && return 0
    sleep 0.1
  done
  cat "$T/http.log" >&2
  fail "http.server did not start"
}

# start_registry DIR [HTPASSWD-FILE] [TLS-DIR]: Debian's docker-registry on a free 127.0.0.1 port,
# its storage, config and log under DIR, with htpasswd auth when a file is given ("" for none)
# and TLS with TLS-DIR/server.crt and server.key when given (make_tls_cert). Sets REG
# (127.0.0.1:PORT) and REG_PID and returns once it answers; it_cleanup stops it (stop_pid
# "$REG_PID" stops it earlier). Call it directly, not in $(...).
start_registry() {
  local dir=$1 htpasswd=${2:-} tls=${3:-}
  [[ -x /usr/bin/docker-registry ]] || skip "docker-registry not installed (apt-get install docker-registry)"
  REG="127.0.0.1:$(free_port)"
  mkdir -p "$dir"
  {
    printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
      "$dir/data" "$REG"
    [[ -z $tls ]] || printf '  tls:\n    certificate: %s/server.crt\n    key: %s/server.key\n' "$tls" "$tls"
    [[ -z $htpasswd ]] || printf 'auth:\n  htpasswd:\n    realm: ocib-test\n    path: %s\n' "$htpasswd"
  } >"$dir/config.yml"
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID=$!
  IT_BG_PIDS+=("$REG_PID")
  # Any HTTP answer means it listens (401 for a registry with auth).
  local _
  for _ in $(seq 100); do
    if [[ -n $tls ]]; then
      [[ $(curl -s --cacert "$tls/server.crt" -o /dev/null -w '%{http_code}' "https://$REG/v2/") != 000 ]] && return 0
    else
      [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/") != 000 ]] && return 0
    fi
    sleep 0.1
  done
  cat "$dir/log" >&2
  fail "docker-registry did not start on $REG"
}

# make_tls_cert DIR: a self-signed certificate for 127.0.0.1 (DIR/server.crt, DIR/server.key).
make_tls_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$1/server.key" -out "$1/server.crt" >"$1/openssl.log" 2>&1 || { cat "$1/openssl.log" >&2; fail "openssl could not make a certificate"; }
}

# ---- OCI layouts --------------------------------------------------------------------

# oci_extract ARCHIVE DIR: unpack an oci-archive tarball into a layout directory.
oci_extract() {
  mkdir -p "$2"
  tar -xf "$1" -C "$2" || fail "cannot extract $1"
  [[ -f $2/index.json && -f $2/oci-layout ]] || fail "$1 is not an OCI layout archive (no index.json/oci-layout)"
}

# oci_ref LAYOUT: the org.opencontainers.image.ref.name of the single image in index.json.
oci_ref() {
  local n ref
  n=$(jq '.manifests | length' "$1/index.json") || fail "$1/index.json is not valid JSON"
  [[ $n -eq 1 ]] || fail "$1/index.json lists $n manifests, expected 1"
  ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "$1/index.json")
  [[ -n $ref ]] || fail "$1/index.json: manifest has no org.opencontainers.image.ref.name annotation"
  printf '%s\n' "$ref"
}

# oci_blob LAYOUT DIGEST: path of a blob.
oci_blob() {
  local p="$1/blobs/${2%%:*}/${2#*:}"
  [[ -f $p ]] || fail "blob $2 missing from $1"
  printf '%s\n' "$p"
}

# oci_manifest LAYOUT: path of the image manifest blob (follows one nested index).
oci_manifest() {
  local d mt p
  d=$(jq -r '.manifests[0].digest' "$1/index.json")
  mt=$(jq -r '.manifests[0].mediaType' "$1/index.json")
  p=$(oci_blob "$1" "$d")
  if [[ $mt == application/vnd.oci.image.index.v1+json ]]; then
    d=$(jq -r '.manifests[0].digest' "$p")
    p=$(oci_blob "$1" "$d")
  fi
  printf '%s\n' "$p"
}

# oci_config LAYOUT: path of the image config blob.
oci_config() {
  local m
  m=$(oci_manifest "$1")
  oci_blob "$1" "$(jq -r '.config.digest' "$m")"
}

# oci_layer_list LAYOUT INDEX: the entries of layer INDEX (0-based; -1 = last), one per line.
oci_layer_list() {
  local m mt d p
  m=$(oci_manifest "$1")
  mt=$(jq -r ".layers[$2].mediaType" "$m")
  d=$(jq -r ".layers[$2].digest" "$m")
  [[ $d != null ]] || fail "image in $1 has no layer $2"
  p=$(oci_blob "$1" "$d")
  case $mt in
    *tar+gzip) tar -tzf "$p" ;;
    *tar+zstd) tar --zstd -tf "$p" ;;
    *tar) tar -tf "$p" ;;
    *) fail "unknown layer media type $mt" ;;
  esac
}

# oci_validate LAYOUT REF: oci-image-tool validation of the layout and the named image.
oci_validate() {
  need_cmd oci-image-tool
  oci-image-tool validate --type image --ref "name=$2" "$1" >"$T/validate.log" 2>&1 || {
    cat "$T/validate.log" >&2
    fail "oci-image-tool validate --type image --ref name=$2 $1 failed"
  }
}

# umoci_unpack LAYOUT REF BUNDLE [umoci options]: unpack an image into a runtime bundle.
umoci_unpack() {
  need_cmd umoci
  local l=$1 r=$2 b=$3
  shift 3
  umoci unpack "$@" --image "$l:$r" "$b" >"$T/umoci.log" 2>&1 || {
    cat "$T/umoci.log" >&2
    fail "umoci unpack $* --image $l:$r $b failed"
  }
}

# runc_run BUNDLE ID OUTFILE: run the bundle's process non-interactively (as root).
runc_run() {
  need_cmd runc
  local b=$1 id=$2 out=$3 rc=0
  jq '.process.terminal = false' "$b/config.json" >"$b/config.json.new"
  mv "$b/config.json.new" "$b/config.json"
  mkdir -p "$T/runc"
  timeout 120 runc --root "$T/runc" run --bundle "$b" "$id" </dev/null >"$out" 2>"$out.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    cat "$out" "$out.err" >&2
    fail "runc run of $b exited with status $rc"
  fi
}

# ---- rootless -------------------------------------------------------------------------

# ensure_test_user: the unprivileged user with subordinate id ranges.
ensure_test_user() {
  need_root "useradd and setpriv need it"
  need_cmd setpriv useradd unshare
  if ! id "$IT_USER" >/dev/null 2>&1; then
    useradd -m "$IT_USER" || fail "useradd -m $IT_USER failed"
  fi
  grep -q "^$IT_USER:" /etc/subuid 2>/dev/null || echo "$IT_USER:200000:65536" >>/etc/subuid
  grep -q "^$IT_USER:" /etc/subgid 2>/dev/null || echo "$IT_USER:200000:65536" >>/etc/subgid
}

# as_user USER CMD...: run CMD as USER with a minimal environment (PATH from $IT_PATH if set).
as_user() {
  local u=$1
  shift
  setpriv --reuid="$u" --regid="$u" --init-groups \
    env -i PATH="${IT_PATH:-/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin}" HOME="$T/u" \
    XDG_RUNTIME_DIR="$T/u/run" OCIB_ROOT="$OCIB_ROOT" LANG=C.UTF-8 "$@"
}

# user_area USER: $T/u owned by USER (its HOME, store, outputs); sets OCIB_ROOT and OCIB_AS.
user_area() {
  mkdir -p "$T/u/run"
  chown -R "$1:" "$T/u"
  chmod 700 "$T/u/run"
  export OCIB_ROOT="$T/u/store"
  OCIB_AS=(as_user "$1")
  # Probe: unprivileged user namespaces must work for this user at all.
  as_user "$1" unshare --user --map-root-user true 2>"$T/userns.err" || {
    cat "$T/userns.err" >&2
    skip "unprivileged user namespaces are not available to $1 on this kernel"
  }
}

# host_arch: the OCI/Go name of this machine's architecture.
host_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armv7l) echo arm ;;
    *) uname -m ;;
  esac
}

# ---- metadata ---------------------------------------------------------------------------

# vertices META JQ-FILTER: jq over .["ocib.vertices"][] (compact output).
vertices() {
  jq -c ".[\"ocib.vertices\"][] | $2" "$1"
}
