#!/usr/bin/env bash
# THE test command: dependencies, build, then every unit and integration test.
#   sudo ./scripts/test.sh             # as root, so the runc/rootless scenarios run too
#   sudo ./scripts/test.sh -R it_cache # extra arguments go to ctest
# Integration scenarios that cannot run (not root, no user namespaces) report SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure "$@"
