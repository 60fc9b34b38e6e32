#!/usr/bin/env bash
# packaging/rpm/ocib.spec against what `cmake --install` really installs: rpmspec parses the
# spec (with Fedora's directory macros defined as this build installs them), and the %files
# list and the DESTDIR install of this build dir cover each other exactly (a file the install
# adds but %files lacks would fail rpmbuild's "installed but unpackaged" check; a %files entry
# matching nothing would fail it too).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd rpmspec cmake
src="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$(dirname "$1")/../.." && pwd)"
[[ -f $build/CMakeCache.txt ]] || skip "no CMake build dir above $1"

DESTDIR="$T/root" cmake --install "$build" --prefix /usr >"$T/install.log" 2>&1 || {
  cat "$T/install.log" >&2
  fail "cmake --install failed"
}
zshdir=$(grep '^OCIB_ZSH_COMPLETIONS_DIR' "$build/CMakeCache.txt" | cut -d= -f2-)
[[ $zshdir == /* ]] || zshdir="/usr/$zshdir"
rpmspec -P "$src/packaging/rpm/ocib.spec" \
  --define "_bindir /usr/bin" --define "_mandir /usr/share/man" \
  --define "bash_completions_dir /usr/share/bash-completion/completions" \
  --define "zsh_completions_dir $zshdir" \
  --define "fish_completions_dir /usr/share/fish/vendor_completions.d" \
  >"$T/spec.parsed" 2>"$T/spec.err" || { cat "$T/spec.err" >&2; fail "rpmspec cannot parse the spec"; }
# The %files patterns (not %license/%doc, which come from the source tree).
awk '/^%files/{on=1; next} /^%changelog/{on=0} on && /^\//{print $1}' "$T/spec.parsed" >"$T/patterns"
[[ -s $T/patterns ]] || fail "no %files entries in the parsed spec"
(cd "$T/root" && find . -type f -o -type l | sed 's/^\.//' | sort) >"$T/installed"
[[ -s $T/installed ]] || fail "cmake --install installed nothing"

unpackaged=()
while read -r f; do
  hit=0
  while read -r p; do
    # shellcheck disable=SC2053 # glob match on purpose
    [[ $f == $p ]] && { hit=1; break; }
  done <"$T/patterns"
  [[ $hit -eq 1 ]] || unpackaged+=("$f")
done <"$T/installed"
[[ ${#unpackaged[@]} -eq 0 ]] || fail "installed but not in %files: ${unpackaged[*]}"
while read -r p; do
  hit=0
  while read -r f; do
    # shellcheck disable=SC2053
    [[ $f == $p ]] && { hit=1; break; }
  done <"$T/installed"
  [[ $hit -eq 1 ]] || fail "%files entry $p matches nothing cmake --install installs"
done <"$T/patterns"
log "$(wc -l <"$T/installed") installed files, all in %files"
