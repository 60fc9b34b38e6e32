#!/bin/sh
# Builds fuzz/dockerfile_fuzz with libFuzzer + ASan + UBSan (clang++ with libclang-rt-dev).
# Usage: fuzz/build.sh [OUT_DIR]   (default /tmp/ocib-fuzz)
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/ocib-fuzz}
CXX=${CXX:-clang++}
mkdir -p "$OUT"
FLAGS="-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -Wall -Wextra -Wshadow -D_GNU_SOURCE -I$SRC/src"
# shellcheck disable=SC2086
$CXX $FLAGS -o "$OUT/dockerfile_fuzz" \
  "$SRC/fuzz/dockerfile_fuzz.cc" \
  "$SRC/src/dockerfile/parser.cc" "$SRC/src/dockerfile/expand.cc" \
  "$SRC/src/dockerfile/json.cc" "$SRC/src/dockerfile/dockerignore.cc" \
  "$SRC/src/base/error.cc" "$SRC/src/base/log.cc"
echo "built $OUT/dockerfile_fuzz"
# shellcheck disable=SC2086
$CXX $FLAGS -o "$OUT/sbom_fuzz" \
  "$SRC/fuzz/sbom_fuzz.cc" "$SRC/src/exporter/sbom.cc" "$SRC/src/base/error.cc" -lsqlite3
echo "built $OUT/sbom_fuzz"

# The bake file readers (HCL subset, JSON, compose with yaml-cpp).
# shellcheck disable=SC2086
$CXX $FLAGS -o "$OUT/bake_fuzz" \
  "$SRC/fuzz/bake_fuzz.cc" \
  "$SRC/src/bake/hcl.cc" "$SRC/src/bake/definition.cc" "$SRC/src/bake/compose.cc" \
  "$SRC/src/base/error.cc" "$SRC/src/base/spec.cc" \
  $(pkg-config --libs yaml-cpp)
echo "built $OUT/bake_fuzz"
