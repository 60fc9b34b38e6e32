#!/usr/bin/env bash
# Install ocib's build and test dependencies on Debian bookworm (idempotent).
# Runs apt-get only when a package is missing; needs root then.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  libseccomp-dev libcap-dev libarchive-dev libssl-dev nlohmann-json3-dev libgtest-dev
  libzstd-dev zlib1g-dev libcurl4-openssl-dev libtoml11-dev libsqlite3-dev libyaml-cpp-dev
  # integration tests and the example
  busybox-static uidmap skopeo umoci oci-image-tool runc jq zstd python3
  docker-registry apache2-utils openssl  # registry tests: a real registry on 127.0.0.1
  mmdebstrap # debian_apt test: a real Debian rootfs
  qemu-user-static # multiplatform test: arm64 RUN steps through binfmt_misc
  util-linux # findmnt, setpriv, unshare
  bash-completion # completions test drives the bash completion
  zsh fish # completions test: the zsh file parses, the fish one parses and completes
  passwd     # useradd
  openssh-client # ssh_forward test: a real ssh-agent forwarded with --ssh
  docker.io podman # load test: --load into a private dockerd and into podman
  fuse-overlayfs # snapshotters test: the fuse-overlayfs snapshot driver
  slirp4netns # RUN --network=default: the user-mode network stack of each step
  proot       # the chroot isolation rung (no namespaces: Docker's default seccomp profile)
  # the Debian package (packaging/build-deb.sh, tests/integration/deb_package.sh)
  dpkg-dev debhelper scdoc
  rpm # rpm_spec test: rpmspec parses packaging/rpm/ocib.spec
  chromium # timeline test: headless Chromium loads the --timeline page and screenshots it
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  SUDO=(sudo)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: missing packages and not root (run with sudo)" >&2; exit 1; }
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Test data: moby's own default seccomp profile (profiles/seccomp/default.json) for the
# ci_container test, taken from Debian's golang-github-docker-docker-dev without installing it
# (it would pull in ~100 Go source packages). Best effort: without it that test skips.
MOBY_PROFILE=/usr/local/share/ocib-test/moby-seccomp-default.json
if [[ ! -s $MOBY_PROFILE ]]; then
  dl=$(mktemp -d)
  if (cd "$dl" && apt-get download -q golang-github-docker-docker-dev >/dev/null 2>&1 ||
      { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && apt-get download -q golang-github-docker-docker-dev >/dev/null; }) &&
     dpkg-deb -x "$dl"/golang-github-docker-docker-dev_*.deb "$dl/x"; then
    "${SUDO[@]}" mkdir -p "$(dirname "$MOBY_PROFILE")"
    "${SUDO[@]}" cp "$dl/x/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json" "$MOBY_PROFILE"
    echo "install-deps: moby's default seccomp profile in $MOBY_PROFILE"
  else
    echo "install-deps: warning: could not fetch golang-github-docker-docker-dev (moby's seccomp profile); it_ci_container will skip" >&2
  fi
  rm -rf "$dl"
fi
