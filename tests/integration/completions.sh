#!/usr/bin/env bash
# The shell completions keep up with the CLI: every command `ocib --help` lists and every
# long option `ocib build --help` lists is offered by the bash, zsh and fish completions, and
# the bash completion (loaded with bash-completion) really completes them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
it_setup "$@"
comp="$(cd "$(dirname "$0")/../../completions" && pwd)"

"$OCIB" --help >"$T/main.help"
"$OCIB" build --help >"$T/build.help"
mapfile -t verbs < <(awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{if (n++) exit}' "$T/main.help")
mapfile -t flags < <(grep -oE '^ +(-[a-z], )?--[a-z-]+' "$T/build.help" | sed 's/.*--//')
[[ ${#verbs[@]} -ge 10 && ${#flags[@]} -ge 20 ]] || fail "could not read the help (${#verbs[@]} verbs, ${#flags[@]} flags)"

missing=()
for v in "${verbs[@]}"; do
  contains -wF -- "$v" "$comp/ocib.bash" || missing+=("bash: command $v")
  contains -F -- "'$v:" "$comp/_ocib" || missing+=("zsh: command $v")
  contains -F -- "-a $v " "$comp/ocib.fish" || missing+=("fish: command $v")
done
for f in "${flags[@]}"; do
  contains -E -- "(^|[ '])--$f([ '=]|$)" "$comp/ocib.bash" || missing+=("bash: --$f")
  contains -E -- "--$f([=+\[}]|$)" "$comp/_ocib" || missing+=("zsh: --$f")
  contains -E -- "-l $f( |$)" "$comp/ocib.fish" || missing+=("fish: --$f")
done
[[ ${#missing[@]} -eq 0 ]] || fail "completions lack: ${missing[*]}"

# The zsh and fish files parse and complete (when the shells are installed). zsh is driven
# through a pseudo-terminal (zpty) with compadd recording what it is offered.
if command -v zsh >/dev/null; then
  zsh -n "$comp/_ocib" || fail "completions/_ocib: zsh syntax error"
  cat >"$T/capture.zsh" <<'ZSH'
# zsh -f capture.zsh COMPLETIONS_DIR "WORDS": the candidates zsh's completion offers for WORDS.
zmodload zsh/zpty
zpty z zsh -f -i
# until MARK: prints what the shell writes until the line MARK (not its echoed command).
until_mark() {
  local line
  integer n=0
  while (( n++ < 3000 )); do
    zpty -rt z line 2>/dev/null || { sleep 0.01; continue; }
    [[ $line == *$1* ]] && return 0
    print -r -- "$line"
  done
  return 1
}
zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "compadd () { builtin compadd -O __hits \"\$@\"; print -l -- \"<<\${^__hits[@]}>>\" }"
zpty -w z "bindkey '^I' complete-word; print -- __REA''DY__"
until_mark __READY__ >/dev/null
zpty -n -w z "$2"$'\t'
sleep 0.5
zpty -n -w z $'\x15'"print -- __DO''NE__"$'\n'
until_mark __DONE__ | grep -o '<<[^>$]*>>' | sed 's/^<<//; s/>>$//' | sort -u
zpty -d z
ZSH
  zc() { (cd "$T" && timeout 60 zsh -f "$T/capture.zsh" "$comp" "$1"); }
  zc 'ocib bu' | contains -x build || fail "zsh: 'ocib bu' does not complete"
  zc 'ocib build --prog' | contains -x -- --progress || fail "zsh: 'ocib build --prog' does not complete"
  zc 'ocib build --progress=r' | contains -x rawjson || fail "zsh: '--progress=r' does not offer rawjson"
  zc 'ocib build --network ' | contains -x host || fail "zsh: '--network ' does not offer host"
  zc 'ocib manifest ' | contains -x create || fail "zsh: 'ocib manifest ' does not offer create"
  zc 'ocib manifest create --' | contains -x -- --tag || fail "zsh: 'ocib manifest create --' does not offer --tag"
  zc 'ocib bake --li' | contains -x -- --list || fail "zsh: 'ocib bake --li' does not complete"
fi
if command -v fish >/dev/null; then
  fish --no-execute "$comp/ocib.fish" || fail "completions/ocib.fish: fish syntax error"
  fc() { fish -c "source '$comp/ocib.fish'; complete -C '$1'" | cut -f1; }
  fc 'ocib build --prog' | contains -x -- --progress || fail "fish: 'ocib build --prog' does not complete"
  fc 'ocib build --progress=r' | contains -x -- --progress=rawjson || fail "fish: no --progress=rawjson"
  fc 'ocib manifest ' | contains -x create || fail "fish: 'ocib manifest ' does not offer create"
  fc 'ocib bake --li' | contains -x -- --list || fail "fish: 'ocib bake --li' does not complete"
fi

# Drive the bash completion the way bash does.
bc=/usr/share/bash-completion/bash_completion
[[ -f $bc ]] || skip "bash-completion not installed (apt-get install bash-completion): the static checks passed"
complete_words() { # WORDS... -> the candidates for the last word
  bash -c 'source "$1"; source "$2"; shift 2; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
           COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _ocib; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$bc" "$comp/ocib.bash" "$@"
}
assert_eq "$(complete_words ocib bu)" "build" "completion of 'ocib bu'"
complete_words ocib build --plat | contains -x -- --platform || fail "'ocib build --plat' does not complete"
complete_words ocib build --progress r | contains -x rawjson || fail "'--progress r' does not offer rawjson"
complete_words ocib build --no-cache | contains -x -- --no-cache-filter || fail "no --no-cache-filter"
complete_words ocib build --time | contains -x -- --timeline || fail "'ocib build --time' does not complete"
complete_words ocib time | contains -x timeline || fail "'ocib time' does not complete"
complete_words ocib manifest cr | contains -x create || fail "'ocib manifest cr' does not complete"
complete_words ocib manifest inspect --r | contains -x -- --raw || fail "'ocib manifest inspect --r' does not complete"
complete_words ocib bake --se | contains -x -- --set || fail "'ocib bake --se' does not complete"
complete_words ocib build --network h | contains -x host || fail "'--network h' does not offer host"
complete_words ocib build --isolation c | contains -x chroot || fail "'--isolation c' does not offer chroot"
