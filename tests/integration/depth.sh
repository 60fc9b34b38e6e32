#!/usr/bin/env bash
# Deep snapshot chains (issue 20): a 1,000-step Dockerfile builds although overlayfs stacks at
# most 500 lower layers, because ocib flattens the bottom of a deep chain into one merged lower.
# Every RUN writes, overwrites, deletes, chmods, chowns, links, symlinks, turns files into
# directories and back, or recreates a directory (an opaque one), so whiteouts and overrides
# cross the flatten boundaries.
#  - the image's final filesystem is compared file by file (type, mode, owner,
#    symlink target, contents) with the same commands run in a plain directory;
#  - layers unchanged: the layer digests of the first 200 steps equal those of a build of just
#    those 200 steps with flattening off (OCIB_FLATTEN=0) on a fresh store;
#  - flats are reused: the same build again with one more step makes no new flat;
#  - with flattening off, a step past the limit fails with an error that names it and the fix;
#  - as an unprivileged user with a subordinate id range, a 100-step build whose flats are made
#    synchronously (a small OCIB_FLATTEN_MAX) gives the same layers as the same build
#    unflattened and the expected tree, and prune collects the flats with their chain.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_root "the flattened tree is compared with one made as root"
need_cmd umoci

# step_cmd I: the shell command of RUN step I (relative paths: run in /w, or a host directory).
# (No 2>/dev/null: a rootless RUN failed to open it once while something on the shared test
# machine replaced the host's /dev/null; the steps test their operands instead.)
step_cmd() {
  local i=$1
  case $((i % 10)) in
    0) echo "echo $i > f$((i % 37))" ;;
    1) echo "rm -f f$(((i * 7) % 37))" ;;
    2) echo "mkdir -p d$((i % 11))/s && echo $i > d$((i % 11))/s/x$((i % 3))" ;;
    3) echo "rm -rf d$(((i * 3) % 11))" ;;
    4) echo "ln -sf f$((i % 37)) l$((i % 13))" ;;
    5) echo "if [ -e f$(((i * 5) % 37)) ]; then chmod 6$((i % 3))$((i % 5)) f$(((i * 5) % 37)); fi" ;;
    6) echo "rm -rf o && mkdir o && echo $i > o/v$((i % 4))" ;;
    7) echo "mkdir -p h && rm -f h/a && echo $i > h/a && ln -f h/a h/b$((i % 3))" ;;
    8) echo "if [ -e f$(((i * 11) % 37)) ]; then chown $((i % 3)):$((i % 2)) f$(((i * 11) % 37)); fi" ;;
    9) if ((i % 20 == 9)); then
         echo "echo $i >> log && rm -rf g$((i % 7)) && mkdir g$((i % 7)) && echo $i > g$((i % 7))/in"
       else
         echo "echo $i >> log && rm -rf g$((i % 7)) && echo $i > g$((i % 7))"
       fi ;;
  esac
}

# make_df DIR FIRST COUNT [EXTRA]: a context whose Dockerfile runs steps FIRST..FIRST+COUNT-1.
make_df() {
  local dir=$1 first=$2 count=$3 extra=${4:-} i
  make_ctx "$dir"
  {
    echo "FROM scratch"
    echo "COPY busybox /bin/busybox"
    echo 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
    echo "RUN mkdir /w"
    for ((i = first; i < first + count; i++)); do echo "RUN cd /w && $(step_cmd "$i")"; done
    [[ -z $extra ]] || echo "RUN $extra"
  } >"$dir/Dockerfile"
  chmod -R a+rX "$dir"
}

# expect_tree DIR COUNT: the same commands in a plain directory (as root, umask 022).
expect_tree() {
  local dir=$1 count=$2 i
  mkdir -p "$dir"
  for ((i = 0; i < count; i++)); do echo "(cd '$dir' && $(step_cmd "$i")) || exit 1"; done >"$T/expect.sh"
  (umask 022 && /bin/busybox sh "$T/expect.sh") || fail "the expected tree's commands failed"
}

# describe DIR: one line per entry (file data compared separately with diff -r; not link counts:
# a type=tar output holds no hardlinks).
describe() {
  (cd "$1" && find . -mindepth 1 -printf '%P %y %m %U:%G %l\n' | LC_ALL=C sort)
}

# fs_of ARCHIVE DIR: the image's /w from a type=tar output.
fs_of() {
  mkdir -p "$2"
  tar --numeric-owner -xpf "$1" -C "$2" w || fail "cannot extract /w from $1"
}

# layers_of OCI-ARCHIVE: its layer digests, one per line.
layers_of() {
  local d
  d=$(mktemp -d "$T/layout.XXXXXX")
  oci_extract "$1" "$d"
  jq -r '.layers[].digest' "$(oci_manifest "$d")"
}

# same_tree GOT WANT WHAT
same_tree() {
  describe "$1" >"$T/got.list"
  describe "$2" >"$T/want.list"
  diff -u "$T/want.list" "$T/got.list" >"$T/tree.diff" || { head -40 "$T/tree.diff" >&2; fail "$3: entries differ"; }
  diff -r --no-dereference "$2" "$1" >"$T/data.diff" || { head -20 "$T/data.diff" >&2; fail "$3: contents differ"; }
}

# Fixed file times, so that two builds of the same steps give the same layers.
SDE="--build-arg SOURCE_DATE_EPOCH=1700000000"
n=1000
ctx="$T/ctx"
make_df "$ctx" 0 "$n"
start=$(date +%s)
OCIB_DEBUG=1 ocib_ok deep build --network=none $SDE -o type=oci,dest="$T/deep.tar" -o type=tar,dest="$T/deep-fs.tar" "$ctx"
log "$((n + 3)) steps built in $(($(date +%s) - start)) s"
flats=$(find "$OCIB_ROOT/f" -mindepth 1 -maxdepth 1 -type d | wc -l)
((flats > 0)) || fail "no flattened lower in $OCIB_ROOT/f after a $n-step build"
log "$flats flattened lowers"
contains -F 'flatten: ' "$T/deep.err" || fail "no flatten in the debug log"
expect_tree "$T/expect" "$n"
fs_of "$T/deep-fs.tar" "$T/got"
same_tree "$T/got/w" "$T/expect" "the $n-step image's /w"
layers_of "$T/deep.tar" >"$T/deep.layers"
assert_eq "$(wc -l <"$T/deep.layers")" "$((n + 3))" "layers of the $n-step image"

# Reused: one more step on the same store (another process) stacks on the flats made before.
make_df "$T/ctx-more" 0 "$n" "echo more > /more"
OCIB_DEBUG=1 ocib_ok more build --network=none $SDE -o type=oci,dest="$T/more.tar" "$T/ctx-more"
line=$(grep -o "lowers: $((n + 3)) snapshots as [0-9]* lowerdirs (the bottom [0-9]* flattened)" "$T/more.err" | head -1) ||
  fail "the added step did not stack on a flat: $(grep 'lowers:' "$T/more.err" | tail -1)"
log "added step: $line"
used=$(awk '{print $5}' <<<"$line")
((used <= 40)) || fail "the added step stacked $used lowerdirs"
assert_eq "$(layers_of "$T/more.tar" | head -n $((n + 3)))" "$(cat "$T/deep.layers")" "layers below the added step"

# Past the limit with flattening off: the error names the limit and the fix (the first 520
# steps are cached; only the last one runs).
make_df "$T/ctx-off" 0 520 "true"
rc=0
OCIB_FLATTEN=0 ocib_run off build --network=none $SDE "$T/ctx-off" || rc=$?
[[ $rc -ne 0 ]] || fail "a 524-deep chain with OCIB_FLATTEN=0 built"
contains -F 'overlayfs stacks at most 500 lower layers' "$T/off.err" || { cat "$T/off.err" >&2; fail "the error does not name the limit"; }
contains -F 'OCIB_FLATTEN=0' "$T/off.err" || fail "the error does not name the fix"

# Layers unchanged: the first 200 steps (flattened from step 48 on above) without flattening.
make_df "$T/ctx200" 0 200
OCIB_ROOT="$T/store-plain" OCIB_FLATTEN=0 ocib_ok plain build --network=none $SDE -o type=oci,dest="$T/plain.tar" "$T/ctx200"
[[ ! -d $T/store-plain/f ]] || [[ -z $(ls -A "$T/store-plain/f") ]] || fail "OCIB_FLATTEN=0 made a flat"
assert_eq "$(layers_of "$T/plain.tar")" "$(head -n 203 "$T/deep.layers")" "layer digests of 200 steps, unflattened vs flattened"

# Rootless: flats made synchronously (no background boundary below depth 1000, so a step that
# would stack more than 12 lowers flattens the whole chain below it), unprivileged, with files
# owned by subordinate ids; the same layers as without flattening.
ensure_test_user
user_area "$IT_USER"
m=100
make_df "$T/ctx-user" 0 "$m"
chmod -R a+rX "$T/ctx-user"
OCIB_AS=(as_user "$IT_USER" env OCIB_FLATTEN_AFTER=10 OCIB_FLATTEN_EVERY=1000 OCIB_FLATTEN_MAX=12 OCIB_DEBUG=1)
ocib_ok user build --network=none $SDE -t depth:user -o type=oci,dest="$T/u/flat.tar" "$T/ctx-user"
contains -F 'flatten: ' "$T/user.err" || fail "the rootless build made no flat"
uflats=$(find "$OCIB_ROOT/f" -mindepth 1 -maxdepth 1 -type d | wc -l)
((uflats >= 5)) || fail "only $uflats flats with OCIB_FLATTEN_MAX=12 over $m steps"
log "rootless: $uflats flattened lowers"
expect_tree "$T/expect-user" "$m"
# Unpacked from its layers: a rootless type=tar output maps every owner to root (so on main too).
oci_extract "$T/u/flat.tar" "$T/user-layout"
umoci unpack --image "$T/user-layout:$(oci_ref "$T/user-layout")" "$T/user-bundle" >"$T/umoci.log" 2>&1 ||
  { cat "$T/umoci.log" >&2; fail "umoci unpack of the rootless image failed"; }
same_tree "$T/user-bundle/rootfs/w" "$T/expect-user" "the rootless $m-step image's /w"
OCIB_AS=(as_user "$IT_USER" env OCIB_ROOT="$T/u/store-plain" OCIB_FLATTEN=0)
ocib_ok user-plain build --network=none $SDE -o type=oci,dest="$T/u/plain.tar" "$T/ctx-user"
assert_eq "$(layers_of "$T/u/flat.tar")" "$(layers_of "$T/u/plain.tar")" "rootless layer digests, flattened vs not"

# prune collects the flats (subordinate-owned directories) with their chains.
OCIB_AS=(as_user "$IT_USER")
ocib_ok prune prune --all
assert_eq "$(find "$OCIB_ROOT/f" -mindepth 1 | wc -l)" "0" "entries of f/ after prune --all"
