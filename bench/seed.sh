#!/usr/bin/env bash
# The seed's real workload: a Debian base, `apt-get install g++ make cmake`, then two
# independent cmake branches of 12 C++ units each (single-job make), their binaries copied into
# the final image. Cold builds (empty store), alternating builders, one run each by default.
#
#   sudo bench/seed.sh OCIB [OCIB2]        # ocib against another ocib binary (before/after)
#   PEER=buildkit sudo bench/seed.sh OCIB   # ocib against BuildKit (the reference dockerd)
#
# Needs root, mmdebstrap and the Debian archive (apt inside the RUN step). RUNS=N repeats.
# Prints seconds per build and the ratio to the first builder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${SEED_WORK:-/tmp/ocib-seed}
runs=${RUNS:-1}
[[ $# -ge 1 ]] || { echo "usage: $0 OCIB [OCIB2]" >&2; exit 2; }
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
cat >"$ctx/Dockerfile" <<'DF'
FROM debian:bookworm AS toolchain
RUN apt-get update && apt-get install -y --no-install-recommends g++ make cmake && rm -rf /var/lib/apt/lists/*
FROM toolchain AS backend
COPY backend /src/backend
RUN cmake -S /src/backend -B /src/backend/build && make -C /src/backend/build
FROM toolchain AS frontend
COPY frontend /src/frontend
RUN cmake -S /src/frontend -B /src/frontend/build && make -C /src/frontend/build
FROM toolchain
COPY --from=backend /src/backend/build/backend /usr/local/bin/
COPY --from=frontend /src/frontend/build/frontend /usr/local/bin/
DF

build_ocib() { # BIN -> seconds
  local bin=$1 store=$work/store
  rm -rf "$store" "$work/out.tar"
  OCIB_ROOT=$store "$bin" import "$work/debian.tar" debian:bookworm >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  local log=$work/log-$(basename "$bin")
  OCIB_ROOT=$store "$bin" build --progress=plain -o type=oci,dest="$work/out.tar" "$ctx" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

build_buildkit() {
  local ref=/work/shared/reference/buildkit.sh sock=${BK_WORK:-/tmp/ocib-bk-ref}/docker.sock
  [[ -x $ref ]] || ref=$here/../../shared/reference/buildkit.sh
  # Start the reference daemon (a trivial build), then give it the same base.
  mkdir -p "$work/bkinit" && printf 'FROM scratch\n' >"$work/bkinit/Dockerfile"
  BK_OUT=$work/bk-init "$ref" "$work/bkinit" >/dev/null 2>&1 || true
  DOCKER_HOST=unix://$sock docker builder prune -af >/dev/null 2>&1 || true
  DOCKER_HOST=unix://$sock docker import "$work/debian.tar" debian:bookworm >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  BK_OUT=$work/bk-out "$ref" --network=host "$ctx" >/dev/null 2>&1 || { tail -20 "$work/bk-out/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

first=""
for r in $(seq 1 "$runs"); do
  a=$(build_ocib "$1")
  if [[ ${PEER:-} == buildkit ]]; then
    b=$(build_buildkit) name=buildkit
  elif [[ $# -ge 2 ]]; then
    b=$(build_ocib "$2") name=$2
  else
    b="" name=""
  fi
  printf 'run %s: %s %.1f s' "$r" "$1" "$a"
  [[ -z $b ]] || printf ', %s %.1f s, ratio %.2f' "$name" "$b" "$(echo "$a / $b" | bc -l)"
  printf '\n'
done
