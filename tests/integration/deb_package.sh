#!/usr/bin/env bash
# The Debian package: packaging/build-deb.sh builds it, it installs with apt-get, ships the
# binary, man pages and completions, and the installed /usr/bin/ocib builds an image that
# skopeo reads. Removes the package again at the end. Takes minutes (a full package build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root "installing a package needs it"
need_cmd dpkg apt-get skopeo
it_setup "$@"

repo=$(cd "$(dirname "$0")/../.." && pwd)
if dpkg-query -W -f='${db:Status-Status}' ocib 2>/dev/null | contains -x installed; then
  skip "package ocib is already installed; not replacing it (dpkg -r ocib first)"
fi

log "building the package (packaging/build-deb.sh; several minutes)"
bash "$repo/packaging/build-deb.sh" "$T/debs" >"$T/build-deb.log" 2>&1 || {
  tail -n 80 "$T/build-deb.log" >&2
  fail "packaging/build-deb.sh failed (log above)"
}
shopt -s nullglob
debs=("$T"/debs/ocib_*.deb)
[[ ${#debs[@]} -eq 1 ]] || fail "expected one ocib_*.deb in $T/debs, found: $(ls "$T/debs")"

# From here on the package is installed: remove it however the scenario ends.
remove_package() {
  local rc=$?
  set +e
  dpkg -r ocib >"$T/dpkg-r.log" 2>&1 || { cat "$T/dpkg-r.log" >&2; rc=1; }
  if dpkg-query -W -f='${db:Status-Status}' ocib 2>/dev/null | contains -x installed; then
    log "FAIL: ocib still installed after dpkg -r"
    rc=1
  fi
  (exit "$rc") # it_cleanup reads the status from $?
  it_cleanup
  exit "$rc"
}
trap remove_package EXIT

log "apt-get install ${debs[0]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[0]}" \
  >"$T/apt.log" 2>&1 || { cat "$T/apt.log" >&2; fail "apt-get install ${debs[0]} failed"; }

# Contents: binary, man pages, completions, copyright (dpkg -L is the package's own list).
dpkg -L ocib >"$T/files.txt"
for f in /usr/bin/ocib \
  /usr/share/man/man1/ocib.1.gz /usr/share/man/man1/ocib-build.1.gz \
  /usr/share/man/man1/ocib-info.1.gz /usr/share/man/man1/ocib-version.1.gz \
  /usr/share/bash-completion/completions/ocib \
  /usr/share/zsh/vendor-completions/_ocib \
  /usr/share/fish/vendor_completions.d/ocib.fish \
  /usr/share/doc/ocib/copyright /usr/share/ocib/apparmor/ocib; do
  grep -qxF "$f" "$T/files.txt" || { cat "$T/files.txt" >&2; fail "package does not ship $f"; }
  [[ -f $f ]] || fail "$f not installed"
done

# The AppArmor profile goes into /etc/apparmor.d only where the kernel restricts user namespaces.
if [[ -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]]; then
  [[ -f /etc/apparmor.d/ocib ]] || fail "the AppArmor userns restriction exists but postinst installed no profile"
else
  [[ ! -e /etc/apparmor.d/ocib ]] || fail "postinst installed an AppArmor profile on a kernel without the userns restriction"
fi
contains -x '  userns,' /usr/share/ocib/apparmor/ocib || fail "the AppArmor profile does not grant userns"
version=$(dpkg-query -W -f='${Version}' ocib)
assert_eq "$(/usr/bin/ocib version)" "ocib ${version%%-*}" "/usr/bin/ocib version"
if command -v man >/dev/null 2>&1; then
  assert_eq "$(man -w ocib-build)" /usr/share/man/man1/ocib-build.1.gz "man -w ocib-build"
fi
# The generated COMMANDS list of ocib(1) names every verb page.
zcat /usr/share/man/man1/ocib.1.gz >"$T/ocib.1"
for verb in build info version; do
  assert_file_contains "$T/ocib.1" "ocib-$verb" "ocib(1)"
done
bash -n /usr/share/bash-completion/completions/ocib || fail "bash completion has a syntax error"

# One real build with the installed binary.
# shellcheck disable=SC2034 # read by ocib_ok (lib.sh)
OCIB=/usr/bin/ocib
ctx="$T/ctx"
make_ctx "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo packaged > /hello"]
CMD ["/bin/busybox", "cat", "/hello"]
DF
ocib_ok build build -t deb-test:1 -o type=oci,dest="$T/img.tar" --progress=plain "$ctx"
skopeo inspect "oci-archive:$T/img.tar" >"$T/inspect.json" 2>"$T/inspect.err" || {
  cat "$T/inspect.err" >&2
  fail "skopeo inspect oci-archive:$T/img.tar failed"
}
assert_eq "$(jq -r '.Layers | length' "$T/inspect.json")" 2 "number of layers (COPY, RUN)"
assert_eq "$(jq -r .Architecture "$T/inspect.json")" "$(host_arch)" "image architecture"
