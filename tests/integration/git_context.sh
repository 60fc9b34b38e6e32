#!/usr/bin/env bash
# A git repository as the build context, as buildx takes it: URL#REF:SUBDIR. The repository is
# served over HTTP on 127.0.0.1 (git's "dumb" protocol from python's http.server, which cannot
# do shallow fetches: the fallback is exercised) and over git:// by `git daemon` when present.
# Checked: the default branch, a tag and a branch with a subdirectory context; -f inside the
# repository; .git is not in the context; a missing ref or subdirectory fails naming it; a
# subdirectory leaving the repository is refused.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
need_cmd git python3 curl

repo="$T/repo"
mkdir -p "$repo/sub"
cp /bin/busybox "$repo/busybox"
cp /bin/busybox "$repo/sub/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY . /ctx/\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox ls -a /ctx > /listing"]\n' >"$repo/Dockerfile"
echo main-1 >"$repo/version"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY . /sub/\n' >"$repo/sub/Dockerfile"
echo sub >"$repo/sub/here"
printf 'FROM scratch\nCOPY version /other-version\n' >"$repo/Other.Dockerfile"
ln -s /etc "$repo/sub/out"
git() { command git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main "$@"; }
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" commit -qm one
git -C "$repo" tag v1
echo main-2 >"$repo/version"
git -C "$repo" commit -qam two
git -C "$repo" branch feature
srv="$T/srv"
mkdir -p "$srv"
git clone -q --bare "$repo" "$srv/app.git"
git -C "$srv/app.git" update-server-info
start_http "$srv"
base="http://127.0.0.1:$HTTP_PORT/app.git"

build() { # NAME URL [ARGS...]: an OCI archive export of the build into $T/NAME (extracted)
  local name=$1 url=$2 rc=0
  shift 2
  "$OCIB" build --progress=plain "$@" -o type=local,dest="$T/$name" "$url" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  return $rc
}

build head "$base" || { tail "$T/head.err" >&2; fail "the default branch of a git context did not build"; }
assert_eq "$(cat "$T/head/ctx/version")" "main-2" "the default branch's file"
if contains -x '.git' "$T/head/listing"; then fail ".git is in the context"; fi

build tag "$base#v1" || { tail "$T/tag.err" >&2; fail "a tag of a git context did not build"; }
assert_eq "$(cat "$T/tag/ctx/version")" "main-1" "the tag's file"

build sub "$base#feature:sub" || { tail "$T/sub.err" >&2; fail "a branch:subdir git context did not build"; }
assert_eq "$(cat "$T/sub/sub/here")" "sub" "the subdirectory as the context"
[[ ! -e $T/sub/sub/version ]] || fail "the subdirectory context holds the repository's top"

build other "$base#main" -f Other.Dockerfile || { tail "$T/other.err" >&2; fail "-f inside a git context did not build"; }
assert_eq "$(cat "$T/other/other-version")" "main-2" "-f names a file in the repository"

rc=0
build noref "$base#no-such-branch" || rc=$?
[[ $rc -ne 0 ]] || fail "a missing ref built"
contains -F 'no-such-branch' "$T/noref.err" || fail "the missing ref is not named: $(tail -2 "$T/noref.err")"
rc=0
build nosub "$base#main:nothere" || rc=$?
[[ $rc -ne 0 ]] || fail "a missing subdirectory built"
contains -F 'subdirectory nothere not found' "$T/nosub.err" || fail "the missing subdirectory is not named: $(tail -2 "$T/nosub.err")"
rc=0
build escape "$base#main:sub/out" || rc=$?
[[ $rc -ne 0 ]] || fail "a subdirectory through a symlink out of the checkout built"
contains -F 'outside the repository' "$T/escape.err" || fail "the escaping subdirectory is not refused as such: $(tail -2 "$T/escape.err")"
left=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ocib-git-*' -newer "$T/repo/Dockerfile" 2>/dev/null || true)
[[ -z $left ]] || fail "checkouts left behind: $left"

if command -v git-daemon >/dev/null 2>&1 || [[ -x /usr/lib/git-core/git-daemon ]]; then
  port=$(free_port)
  touch "$srv/app.git/git-daemon-export-ok"
  command git daemon --listen=127.0.0.1 --port="$port" --base-path="$srv" --export-all --reuseaddr "$srv" >"$T/daemon.log" 2>&1 &
  IT_BG_PIDS+=("$!")
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  build daemon "git://127.0.0.1:$port/app.git#v1" || { tail "$T/daemon.err" >&2; fail "a git:// context (shallow fetch) did not build"; }
  assert_eq "$(cat "$T/daemon/ctx/version")" "main-1" "the tag over git://"
fi
log PASS
