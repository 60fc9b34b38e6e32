#!/usr/bin/env bash
# Build the ocib Debian package: packaging/build-deb.sh [OUTDIR]   (default OUTDIR: .)
#
# Debian tools want debian/ at the root of the source tree, and ours lives in
# packaging/debian so the checkout stays uncluttered. This copies the tree (the files git
# knows about, or everything but build directories without git) to a temporary directory,
# puts packaging/debian there as debian/, runs `dpkg-buildpackage -us -uc -b` and moves the
# resulting .deb files to OUTDIR.
#
# Missing build dependencies are installed with apt-get (needs root, or sudo). Environment:
#   JOBS=N            parallel build jobs (default: nproc)
#   OCIB_DEB_KEEP=1   keep the temporary directory
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-.}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jobs=${JOBS:-$(nproc)}

say() { printf 'build-deb: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "not root and no sudo: cannot run $*"
  fi
}

apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# The tools to read debian/control at all; the build dependencies come after the copy.
tools=()
for p in dpkg-dev debhelper; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) == installed ]] || tools+=("$p")
done
if [[ ${#tools[@]} -gt 0 ]]; then
  say "installing ${tools[*]}"
  apt_install "${tools[@]}"
fi

version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
project_version=$(sed -n 's/^project(ocib VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [[ $version != "$project_version" ]]; then
  say "warning: packaging/debian/changelog says $version, CMakeLists.txt says $project_version"
fi

tmp=$(mktemp -d /tmp/ocib-deb.XXXXXX)
cleanup() {
  if [[ ${OCIB_DEB_KEEP:-0} == 1 ]]; then
    say "keeping $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
tree="$tmp/ocib-$version"
mkdir "$tree"

# Tracked and untracked-but-not-ignored files, so local changes are packaged too; files
# deleted in the work tree are skipped. safe.directory: CI may run this as root on a
# checkout owned by another user.
if git -c safe.directory="$src" -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  say "copying the files git knows about from $src"
  git -c safe.directory="$src" -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [[ -e $src/$f || -L $src/$f ]]; then printf '%s\0' "$f"; fi
    done |
    tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -
else
  say "copying $src (no git work tree; build directories excluded)"
  tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./.cache \
    --exclude=./obj-\* --exclude=./debian -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -a "$src/packaging/debian" "$tree/debian"

cd "$tree"
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  say "installing build dependencies: $(dpkg-checkbuilddeps 2>&1 | sed 's/.*Unmet build dependencies: //')"
  [[ $apt_updated == 1 ]] || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q --no-install-recommends "$tree"
fi

say "dpkg-buildpackage -us -uc -b -j$jobs in $tree"
dpkg-buildpackage -us -uc -b -j"$jobs"

shopt -s nullglob
debs=("$tmp"/*.deb)
[[ ${#debs[@]} -gt 0 ]] || die "dpkg-buildpackage produced no .deb"
mv "${debs[@]}" "$out/"
for d in "${debs[@]}"; do
  say "wrote $out/$(basename "$d")"
done
