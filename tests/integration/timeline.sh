#!/usr/bin/env bash
# --timeline and `ocib timeline`: four independent `RUN sleep 1` branches merged in a final
# stage. The page has one bar per step of the metadata, the four branches in four lanes and
# overlapping in time (by the metadata's timestamps), the critical path's bars marked as
# "ocib.critical_path" lists them, tooltips with stage and duration, step names escaped and
# nothing fetched; `ocib timeline` of the metadata gives the same bytes; a cached rebuild's
# bars are all marked cached; usage errors exit 2.
# With Chromium: the page's own check passes in a real browser (data-check="ok") and a
# screenshot is kept in build/test-artifacts/ (OCIB_IT_ARTIFACTS). Without it that part is
# skipped with a note; the rest is the test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$(cd "$(dirname "$0")" && pwd)"  # the scenario cds into $T
artifacts=${OCIB_IT_ARTIFACTS:-$(cd "$here/../.." && pwd)/build/test-artifacts}
it_setup "$@"

ctx="$T/ctx"
make_ctx "$ctx"
# b1's name has every character HTML cares about.
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]

FROM base AS b1
RUN sleep 1 && echo "<one & 'only'>" > /one

FROM base AS b2
RUN sleep 1 && echo two > /two

FROM base AS b3
RUN sleep 1 && echo three > /three

FROM base AS b4
RUN sleep 1 && echo four > /four

FROM base AS final
COPY --from=b1 /one /one
COPY --from=b2 /two /two
COPY --from=b3 /three /three
COPY --from=b4 /four /four
DF

# Usage errors come before any work.
rc=0
ocib_run badpath build --timeline "$T/no/such/dir/t.html" -o type=oci,dest="$T/x.tar" "$ctx" || rc=$?
assert_eq "$rc" 2 "exit status of --timeline into a missing directory"
assert_file_contains "$T/badpath.err" "$T/no/such/dir" "the --timeline error"
[[ ! -e $T/x.tar ]] || fail "--timeline into a missing directory still built"

cd "$T"
ocib_ok build build -j 4 -o type=oci,dest="$T/app.tar" --timeline "$T/t.html" --metadata-file "$T/m.json" \
  --progress=plain "$ctx"
[[ -s $T/t.html ]] || fail "--timeline did not write $T/t.html"
[[ $(head -c 15 "$T/t.html") == "<!DOCTYPE html>" ]] || fail "t.html does not start with <!DOCTYPE html>"

# The metadata: four branch RUNs overlapping in time, a critical path through one of them.
branch_runs='[.["ocib.vertices"][] | select((.stage | test("^b[1-4]$")) and (.name | test("\\] RUN ")))]'
n=$(jq "$branch_runs | length" "$T/m.json")
[[ $n -eq 4 ]] || { jq . "$T/m.json" >&2; fail "expected 4 branch RUN vertices in the metadata, found $n"; }
jq -e "$branch_runs | (map(.started) | max) < (map(.completed) | min)" "$T/m.json" >/dev/null ||
  { jq -c "$branch_runs | .[] | {name, started, completed}" "$T/m.json" >&2; fail "the branch RUNs did not overlap"; }
mapfile -t branch_ids < <(jq -r "$branch_runs | .[].id" "$T/m.json")
mapfile -t all_ids < <(jq -r '.["ocib.vertices"][].id' "$T/m.json")
mapfile -t crit_ids < <(jq -r '.["ocib.critical_path"][]' "$T/m.json")
[[ ${#crit_ids[@]} -ge 2 ]] || fail "ocib.critical_path lists ${#crit_ids[@]} steps: $(jq -c '.["ocib.critical_path"]' "$T/m.json")"
jq -e --argjson b "$(jq -c "$branch_runs | map(.id)" "$T/m.json")" \
  '[.["ocib.critical_path"][] | select(. as $i | $b | index($i))] | length == 1' "$T/m.json" >/dev/null ||
  fail "the critical path does not go through exactly one branch RUN: $(jq -c '.["ocib.critical_path"]' "$T/m.json")"

# The page: one bar per vertex, each with a tooltip.
bar_tag() { grep -oE "<g class=\"bar[^\"]*\" data-id=\"$1\"[^>]*>" "$T/t.html"; }
n_bars=$(grep -cE '^<g class="bar[ "]' "$T/t.html")
assert_eq "$n_bars" "${#all_ids[@]}" "bars in the page (vertices in the metadata)"
assert_eq "$(grep -A1 -E '^<g class="bar[ "]' "$T/t.html" | grep -c '^<title>')" "${#all_ids[@]}" "bar tooltips"
lanes=()
for id in "${branch_ids[@]}"; do
  [[ $(bar_tag "$id" | wc -l) -eq 1 ]] || fail "no single bar for branch step $id"
  lanes+=("$(bar_tag "$id" | sed -E 's/.* data-lane="([0-9]+)".*/\1/')")
done
distinct=$(printf '%s\n' "${lanes[@]}" | sort -u | wc -l)
assert_eq "$distinct" 4 "distinct lanes of the four overlapping branches (lanes: ${lanes[*]})"
log "branch bars in lanes ${lanes[*]}"
# The bars marked critical are exactly the metadata's critical path.
marked=$(grep -oE '<g class="bar[^"]*" data-id="[0-9]+"[^>]*data-critical="true"' "$T/t.html" |
  sed -E 's/.* data-id="([0-9]+)".*/\1/' | sort -n | tr '\n' ' ')
assert_eq "$marked" "$(printf '%s\n' "${crit_ids[@]}" | sort -n | tr '\n' ' ')" "bars marked critical"
for id in "${crit_ids[@]}"; do bar_tag "$id" | contains -F 'class="bar critical"' || bar_tag "$id" |
  contains -F 'class="bar cached critical"' || fail "critical step $id's bar has no critical class"; done
assert_file_contains "$T/t.html" "stage: b2" "the tooltips"
contains -E '^duration: 1\.[0-9]{3} s' "$T/t.html" || fail "no tooltip gives a branch's ~1 s duration"
# Escaped: the name as text, never as markup; nothing outside the page.
assert_file_contains "$T/t.html" "echo &quot;&lt;one &amp; &#39;only&#39;&gt;&quot; &gt; /one" "b1's escaped name"
! contains -F "<one" "$T/t.html" || fail "b1's name reached the page unescaped"
! contains -E '(src|href)=' "$T/t.html" || fail "the page refers to something outside it: $(grep -oE '(src|href)=[^ >]*' "$T/t.html" | head -3)"
urls=$(grep -oE 'https?://[^" ]*' "$T/t.html" | grep -vx 'http://www.w3.org/2000/svg' || true)
[[ -z $urls ]] || fail "the page names URLs: $urls"
contains -F '<script type="application/json" id="ocib-metadata">' "$T/t.html" || fail "no embedded metadata"

# `ocib timeline` of the same metadata: the same page.
ocib_ok timeline timeline "$T/m.json"
cmp "$T/timeline.out" "$T/t.html" || fail "ocib timeline m.json differs from the page --timeline wrote"
"$OCIB" timeline - <"$T/m.json" | cmp - "$T/t.html" || fail "ocib timeline - (stdin) differs from the page --timeline wrote"
# A rebuild is answered by the cache: every bar hatched as cached, the path still marked.
ocib_ok rebuild build -j 4 -o type=oci,dest="$T/app2.tar" --timeline "$T/cached.html" --metadata-file "$T/m2.json" "$ctx"
n_cached=$(jq '[.["ocib.vertices"][] | select(.cached)] | length' "$T/m2.json")
n_all=$(jq '.["ocib.vertices"] | length' "$T/m2.json")
[[ $n_all -gt 0 && $n_cached -eq $n_all ]] || fail "the rebuild was not fully cached ($n_cached of $n_all steps)"
assert_eq "$(grep -cE '^<g class="bar cached( critical)?" [^>]*data-cached="true"' "$T/cached.html")" "$n_all"   "bars of the cached rebuild marked cached"
assert_file_contains "$T/cached.html" 'fill="url(#hatch)"' "the cached rebuild's page"
# ... and clear usage errors.
expect_usage() { # NAME FILE WANTED-TEXT
  local rc=0
  ocib_run "$1" timeline "$2" || rc=$?
  assert_eq "$rc" 2 "exit status of ocib timeline ($1)"
  assert_file_contains "$T/$1.err" "$3" "ocib timeline's error ($1)"
}
expect_usage missing "$T/nope.json" "$T/nope.json"
printf 'not json' >"$T/bad.json"
expect_usage notjson "$T/bad.json" "not JSON"
echo '{"containerimage.digest":"sha256:00"}' >"$T/buildx.json"
expect_usage nostamps "$T/buildx.json" "ocib.vertices"

# In a real browser.
chromium=$(command -v chromium || true)
if [[ -z $chromium ]]; then
  log "NOTE: browser check skipped: chromium not installed (scripts/install-deps.sh installs it)"
  exit 0
fi
browse() { # ARGS...: headless Chromium with a profile of its own
  HOME="$T" timeout 120 "$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run \
    --disable-extensions --disable-dev-shm-usage --user-data-dir="$T/chromium-profile" "$@"
}
browse --dump-dom "file://$T/t.html" >"$T/dom.html" 2>"$T/chromium.err" ||
  { tail -20 "$T/chromium.err" >&2; fail "chromium --dump-dom failed"; }
verdict=$(grep -oE '<body data-check="[^"]*"' "$T/dom.html" | sed -E 's/.*data-check="//; s/"$//' || true)
assert_eq "$verdict" "ok" "the page's own check in Chromium (data-check)"
contains -F "<title>ocib build timeline (check: ok)</title>" "$T/dom.html" || fail "the page title does not carry the verdict"
# The check is not a constant "ok": a page whose critical marks disagree with its metadata
# (one branch bar off the path marked critical) gets a mismatch naming the difference.
off_path=""
for id in "${branch_ids[@]}"; do printf '%s\n' "${crit_ids[@]}" | contains -qx "$id" || { off_path=$id; break; }; done
[[ -n $off_path ]] || fail "every branch is on the critical path?"
sed -E "s/(data-id=\"$off_path\"[^>]*data-critical=)\"false\"/\1\"true\"/" "$T/t.html" >"$T/tampered.html"
! cmp -s "$T/t.html" "$T/tampered.html" || fail "could not tamper with step $off_path's bar"
browse --dump-dom "file://$T/tampered.html" >"$T/dom-tampered.html" 2>"$T/chromium-tampered.err" ||
  { tail -20 "$T/chromium-tampered.err" >&2; fail "chromium --dump-dom (tampered page) failed"; }
contains -F '<body data-check="mismatch: bars marked critical' "$T/dom-tampered.html" ||
  fail "the page's check did not catch a wrongly marked bar: $(grep -oE '<body[^>]*>' "$T/dom-tampered.html")"
browse --dump-dom "file://$T/cached.html" >"$T/dom-cached.html" 2>"$T/chromium-cached.err" ||
  { tail -20 "$T/chromium-cached.err" >&2; fail "chromium --dump-dom (cached page) failed"; }
contains -F '<body data-check="ok"' "$T/dom-cached.html" ||
  fail "the cached rebuild's page fails its check: $(grep -oE '<body[^>]*>' "$T/dom-cached.html")"
browse --screenshot="$T/timeline.png" --window-size=1200,600 --hide-scrollbars "file://$T/t.html" \
  >"$T/shot.out" 2>"$T/shot.err" || { tail -20 "$T/shot.err" >&2; fail "chromium --screenshot failed"; }
[[ -s $T/timeline.png ]] || fail "chromium wrote no screenshot"
# The screenshot shows the four branch bars: pixels of the bar colours in four separate rows
# (lanes) that share a column (overlap in time).
python3 "$here/timeline_png.py" "$T/timeline.png" >"$T/png.out" 2>&1 ||
  { cat "$T/png.out" >&2; fail "the screenshot does not show four overlapping bars"; }
log "screenshot: $(cat "$T/png.out")"
mkdir -p "$artifacts"
cp "$T/timeline.png" "$artifacts/timeline.png"
cp "$T/t.html" "$artifacts/timeline.html"
log "screenshot kept: $artifacts/timeline.png (page: $artifacts/timeline.html)"
