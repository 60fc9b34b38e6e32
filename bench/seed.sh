#!/usr/bin/env bash
# The seed's real workload: a Debian base, `apt-get install g++ make cmake`, then two cmake
# branches of 12 C++ units each (single-job make), their binaries copied into the final image.
# Alternating builders, RUNS rounds (default 1); only medians over rounds mean anything here
# (figures swing +-10% between runs on this machine).
#
#   sudo bench/seed.sh OCIB [OCIB2]         # ocib against another ocib binary (before/after)
#   PEER=buildkit sudo bench/seed.sh OCIB    # ocib against BuildKit (the reference dockerd)
#
# MODE=cold (default): an empty cache each build (the base imported beforehand, not timed).
# MODE=rebuild: one untimed cold build per builder, then per round a change in both branches
#   (one source line each) and a timed rebuild; for ocib also a change in one branch only ("one
#   branch alone") and, when g++/cmake/make are on the host, the same branch compiled on the
#   host against the compile inside ocib's RUN step (`time make` in the step).
# SHAPE=correct (default): both branches FROM toolchain (they run side by side);
# SHAPE=incorrect: the seed's anti-pattern, frontend FROM backend (they run one after another).
#
# BuildKit is timed on `docker build` alone (the result lands in dockerd's image store: no
# layer is compressed or archived); ocib on `ocib build -o type=oci` (a gzip OCI archive, so
# ocib does more; OCIB_COMPRESSION=uncompressed for the same work as BuildKit's).
# Needs root, mmdebstrap and the Debian archive (apt inside the RUN step). Prints seconds per
# build, the per-round ratio to the first builder and the medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${SEED_WORK:-/tmp/ocib-seed}
runs=${RUNS:-1}
mode=${MODE:-cold}
shape=${SHAPE:-correct}
compression=${OCIB_COMPRESSION:-gzip}
[[ $# -ge 1 ]] || { echo "usage: $0 OCIB [OCIB2]" >&2; exit 2; }
[[ $mode == cold || $mode == rebuild ]] || { echo "MODE must be cold or rebuild" >&2; exit 2; }
[[ $shape == correct || $shape == incorrect ]] || { echo "SHAPE must be correct or incorrect" >&2; exit 2; }
mkdir -p "$work"

# The base: a minimal Debian rootfs, made once.
[[ -s $work/debian.tar ]] || mmdebstrap --variant=minbase --format=tar bookworm "$work/debian.tar" >"$work/mm.log" 2>&1

ctx=$work/ctx
rm -rf "$ctx" && mkdir -p "$ctx"
for branch in backend frontend; do
  d=$ctx/$branch
  mkdir -p "$d"
  srcs=""
  for i in $(seq 1 12); do
    # Each unit instantiates <regex> and friends: ~2-4 s of g++ -O2 each.
    cat >"$d/u$i.cc" <<EOF
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>
std::string ${branch}_u$i(const std::string& in) {
  std::regex re("([a-z]+)$i([0-9]*)");
  std::map<std::string, std::vector<std::string>> m;
  for (std::sregex_iterator it(in.begin(), in.end(), re), end; it != end; ++it) m[(*it)[1]].push_back((*it)[2]);
  std::ostringstream o;
  for (auto& [k, v] : m) o << k << v.size();
  return o.str();
}
EOF
    srcs="$srcs u$i.cc"
  done
  decls=$(for i in $(seq 1 12); do printf 'std::string %s_u%s(const std::string&);\n' "$branch" "$i"; done)
  calls=$(for i in $(seq 1 12); do printf '  s += %s_u%s(argv[0]);\n' "$branch" "$i"; done)
  printf '#include <cstdio>\n#include <string>\n%s\nint main(int, char** argv) {\n  std::string s;\n%s  std::puts(s.c_str());\n}\n' \
    "$decls" "$calls" >"$d/main.cc"
  printf 'cmake_minimum_required(VERSION 3.13)\nproject(%s CXX)\nset(CMAKE_BUILD_TYPE Release)\nadd_executable(%s main.cc%s)\n' \
    "$branch" "$branch" "$srcs" >"$d/CMakeLists.txt"
done
front_from=toolchain
[[ $shape == correct ]] || front_from=backend
# bash for `time`: the compile's own duration lands in the step's output (the host comparison).
cat >"$ctx/Dockerfile" <<DF
FROM debian:bookworm AS toolchain
RUN apt-get update && apt-get install -y --no-install-recommends g++ make cmake && rm -rf /var/lib/apt/lists/*
FROM toolchain AS backend
COPY backend /src/backend
RUN ["/bin/bash", "-c", "cmake -S /src/backend -B /src/backend/build >/dev/null && time make -s -C /src/backend/build"]
FROM $front_from AS frontend
COPY frontend /src/frontend
RUN ["/bin/bash", "-c", "cmake -S /src/frontend -B /src/frontend/build >/dev/null && time make -s -C /src/frontend/build"]
FROM toolchain
COPY --from=backend /src/backend/build/backend /usr/local/bin/
COPY --from=frontend /src/frontend/build/frontend /usr/local/bin/
DF

# change BRANCH...: one source line of each branch differs from the last build (a new constant).
change() {
  local b
  for b in "$@"; do
    stamp=$((stamp + 1))
    echo "static const int stamp_$stamp = $stamp;" >>"$ctx/$b/u1.cc"
  done
}
stamp=0

now() { date +%s.%N; }
# ocib BIN [cold]: one build into BIN's own store; prints seconds.
build_ocib() {
  local bin=$1 store=$work/store-$(basename "$1") log=$work/log-$(basename "$1")
  if [[ ${2:-} == cold ]]; then
    rm -rf "$store" "$work/out.tar"
    OCIB_ROOT=$store "$bin" import "$work/debian.tar" debian:bookworm >/dev/null
    # `docker import` leaves the base unpacked in dockerd's store; ocib's import keeps the
    # blob and unpacks on first use: unpack it here, untimed, so both start from the same state.
    mkdir -p "$work/warm" && printf 'FROM debian:bookworm\nRUN true\n' >"$work/warm/Dockerfile"
    OCIB_ROOT=$store "$bin" build -q "$work/warm" >/dev/null
  fi
  local t0 t1
  t0=$(now)
  OCIB_ROOT=$store "$bin" build --progress=plain -o type=oci,dest="$work/out.tar",compression="$compression" "$ctx" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; exit 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc
}

bk_ref=/work/shared/reference/buildkit.sh
[[ -x $bk_ref ]] || bk_ref=$here/../../shared/reference/buildkit.sh
bk_sock=${BK_WORK:-/tmp/ocib-bk-ref}/docker.sock
bk() { DOCKER_HOST=unix://$bk_sock DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }
# buildkit [cold]: `docker build` on the reference daemon; prints seconds.
build_buildkit() {
  if [[ ${1:-} == cold ]]; then
    # Start the reference daemon (a trivial build), then give it an empty cache and the base.
    mkdir -p "$work/bkinit" && printf 'FROM scratch\n' >"$work/bkinit/Dockerfile"
    BK_OUT=$work/bk-init "$bk_ref" "$work/bkinit" >/dev/null 2>&1 || true
    bk rmi -f ocib-seed >/dev/null 2>&1 || true
    bk builder prune -af >/dev/null 2>&1 || true
    bk import "$work/debian.tar" debian:bookworm >/dev/null
  fi
  local t0 t1
  t0=$(now)
  bk build --progress=plain --network=host -t ocib-seed "$ctx" >"$work/log-buildkit" 2>&1 ||
    { tail -20 "$work/log-buildkit" >&2; exit 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc
}

# The compile's own time inside the last build's backend RUN step (bash's `time` output).
step_compile() { grep -E '^#[0-9]+ [0-9.]+ real' "$1" | head -1 | sed -E 's/.*real[[:space:]]+([0-9]+)m([0-9.]+)s/\1 \2/' | awk '{print $1*60+$2}'; }
host_compile() { # the backend branch on the host, as the step does it
  local d=$work/host-backend
  rm -rf "$d" && cp -r "$ctx/backend" "$d"
  cmake -S "$d" -B "$d/build" >/dev/null
  local t0 t1
  t0=$(now); make -s -C "$d/build" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
peer=""
if [[ ${PEER:-} == buildkit ]]; then peer=buildkit
elif [[ $# -ge 2 ]]; then peer=$2; fi
run_peer() { if [[ $peer == buildkit ]]; then build_buildkit "$@"; else build_ocib "$peer" "$@"; fi; }
ratios=$work/ratios; : >"$ratios"; : >"$work/one"; : >"$work/host"

echo "seed: MODE=$mode SHAPE=$shape, $runs round(s), $(basename "$1") (-o type=oci,compression=$compression)${peer:+ against $peer}"
if [[ $mode == rebuild ]]; then
  build_ocib "$1" cold >/dev/null
  [[ -z $peer ]] || run_peer cold >/dev/null
fi
for r in $(seq 1 "$runs"); do
  if [[ $mode == cold ]]; then
    a=$(build_ocib "$1" cold); b=""; [[ -z $peer ]] || b=$(run_peer cold)
    printf 'round %s cold: %s %.1f s' "$r" "$(basename "$1")" "$a"
  else
    change backend frontend
    a=$(build_ocib "$1")
    b=""; [[ -z $peer ]] || b=$(run_peer)
    printf 'round %s rebuild (both branches changed): %s %.1f s' "$r" "$(basename "$1")" "$a"
  fi
  if [[ -n $b ]]; then
    printf ', %s %.1f s, ratio %.2f' "$peer" "$b" "$(echo "$a / $b" | bc -l)"
    echo "$a / $b" | bc -l >>"$ratios"
  fi
  printf '\n'
  if [[ $mode == rebuild ]]; then
    change backend
    one=$(build_ocib "$1"); inside=$(step_compile "$work/log-$(basename "$1")")
    printf '  one branch changed: %.1f s (both / one %.2f)\n' "$one" "$(echo "$a / $one" | bc -l)"
    echo "$a / $one" | bc -l >>"$work/one"
    if command -v g++ >/dev/null && command -v cmake >/dev/null && [[ -n $inside ]]; then
      host=$(host_compile)
      printf '  backend compile: in the RUN step %.1f s, on the host %.1f s (ratio %.3f)\n' "$inside" "$host" "$(echo "$inside / $host" | bc -l)"
      echo "$inside / $host" | bc -l >>"$work/host"
    fi
  fi
done
[[ ! -s $ratios ]] || printf 'median ratio %s / %s: %.2f\n' "$(basename "$1")" "$peer" "$(median <"$ratios")"
[[ ! -s $work/one ]] || printf 'median both-changed / one-changed rebuild: %.2f\n' "$(median <"$work/one")"
[[ ! -s $work/host ]] || printf 'median compile in RUN / on host: %.3f\n' "$(median <"$work/host")"
