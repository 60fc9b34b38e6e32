#!/usr/bin/env bash
# Configure and build ocib into build/ (extra arguments go to cmake).
set -euo pipefail
cd "$(dirname "$0")/.."

args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ ${CI:-} == true ]]; then
  args+=(-DOCIB_WERROR=ON)
fi
cmake -S . -B build "${args[@]}" "$@"
ninja -C build
