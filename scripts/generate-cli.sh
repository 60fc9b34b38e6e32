#!/usr/bin/env bash
# Rewrites the files made from the command table (src/cli/table.cc): the bash, zsh and fish
# completions and the generated OPTIONS sections of docs/man/ocib-*.1.scd, then checks the
# README's usage block and build option table against it. table_test (ctest -R cli\.)
# fails while any of them differs from the table.
#   scripts/generate-cli.sh [build/src/cli/ocib]    (or: ninja -C build generate-cli)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ocib="${1:-$root/build/src/cli/ocib}"
[[ -x $ocib ]] || { echo "generate-cli.sh: no ocib binary at $ocib (build first)" >&2; exit 1; }
# The table only: no configuration file of this machine can make a command fail.
OCIB_CONFIG=$(mktemp)
export OCIB_CONFIG
trap 'rm -f "$OCIB_CONFIG"' EXIT

"$ocib" __generate bash >"$root/completions/ocib.bash"
"$ocib" __generate zsh >"$root/completions/_ocib"
"$ocib" __generate fish >"$root/completions/ocib.fish"
for page in "$root"/docs/man/ocib-*.1.scd; do
  "$ocib" __generate man "$page" >"$page.new"
  if cmp -s "$page" "$page.new"; then rm "$page.new"; else mv "$page.new" "$page"; echo "updated ${page#"$root"/}"; fi
done
"$ocib" __generate readme "$root/README.md"
