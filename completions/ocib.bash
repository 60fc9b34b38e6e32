# bash completion for ocib(1)                                   -*- shell-script -*-
# Installed as ${datadir}/bash-completion/completions/ocib (loaded on demand).
# Generated from src/cli/table.cc by `ocib __generate bash` (scripts/generate-cli.sh): do not edit.
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom

# _ocib_value VERB FLAG: completes FLAG's value into COMPREPLY; status 1 if FLAG takes none.
_ocib_value() {
  case $1:$2 in
    build:-f | build:--file) _filedir ;;
    build:-t | build:--tag) ;;
    build:--target) ;;
    build:--label) ;;
    build:--build-context) ;;
    build:--build-arg) ;;
    build:--platform) COMPREPLY=($(compgen -W 'linux/amd64 linux/arm64 linux/amd64,linux/arm64' -- "$cur")) ;;
    build:-o | build:--output) COMPREPLY=($(compgen -W 'type=oci,dest= type=oci-layout,dest= type=docker,dest= type=local,dest= type=tar,dest= type=image,name= type=registry,name=' -- "$cur")); compopt -o nospace ;;
    build:--annotation) ;;
    build:--ulimit) ;;
    build:--isolation) COMPREPLY=($(compgen -W 'auto full procfs-less chroot' -- "$cur")) ;;
    build:--add-host) ;;
    build:--shm-size) ;;
    build:--call) COMPREPLY=($(compgen -W 'build check' -- "$cur")) ;;
    build:--iidfile) _filedir ;;
    build:--print) COMPREPLY=($(compgen -W 'graph graph-json lint plan' -- "$cur")) ;;
    build:--secret) ;;
    build:--provenance) COMPREPLY=($(compgen -W 'true false mode=min mode=max' -- "$cur")) ;;
    build:--sbom) COMPREPLY=($(compgen -W 'true false' -- "$cur")) ;;
    build:--attest) COMPREPLY=($(compgen -W 'type=provenance type=provenance,mode=max type=sbom' -- "$cur")) ;;
    build:--ssh) ;;
    build:--pull) COMPREPLY=($(compgen -W 'always missing never true false' -- "$cur")) ;;
    build:--insecure-registry) ;;
    build:--registry-mirror) ;;
    build:--progress) COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur")) ;;
    build:--metadata-file) _filedir ;;
    build:--timeline) _filedir ;;
    build:-j | build:--jobs) ;;
    build:--no-cache-filter) ;;
    build:--cache-to) COMPREPLY=($(compgen -W 'type=local,dest= type=registry,ref= type=inline' -- "$cur")); compopt -o nospace ;;
    build:--cache-from) COMPREPLY=($(compgen -W 'type=local,src= type=registry,ref=' -- "$cur")); compopt -o nospace ;;
    build:--network) COMPREPLY=($(compgen -W 'default none host' -- "$cur")) ;;
    build:--allow) COMPREPLY=($(compgen -W 'security.insecure network.host' -- "$cur")) ;;
    bake:-f | bake:--file) _filedir ;;
    bake:--set) ;;
    bake:--list) COMPREPLY=($(compgen -W 'targets' -- "$cur")) ;;
    bake:--pull) COMPREPLY=($(compgen -W 'always missing never true false' -- "$cur")) ;;
    bake:--progress) COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur")) ;;
    bake:--metadata-file) _filedir ;;
    bake:--timeline) _filedir ;;
    bake:--allow) COMPREPLY=($(compgen -W 'security.insecure network.host' -- "$cur")) ;;
    bake:--provenance) COMPREPLY=($(compgen -W 'true false mode=min mode=max' -- "$cur")) ;;
    bake:--sbom) COMPREPLY=($(compgen -W 'true false' -- "$cur")) ;;
    bake:--call) COMPREPLY=($(compgen -W 'build check' -- "$cur")) ;;
    bake:-j | bake:--jobs) ;;
    bake:--insecure-registry) ;;
    import:--platform) COMPREPLY=($(compgen -W 'linux/amd64 linux/arm64' -- "$cur")) ;;
    login:-u | login:--username) ;;
    login:-p | login:--password) ;;
    login:--insecure-registry) ;;
    create:-t | create:--tag) ;;
    create:--insecure-registry) ;;
    inspect:--insecure-registry) ;;
    prune:--filter) COMPREPLY=($(compgen -W 'until=' -- "$cur")); compopt -o nospace ;;
    pull:--insecure-registry) ;;
    push:--insecure-registry) ;;
    *) return 1 ;;
  esac
  return 0
}

_ocib() {
  local cur prev words cword
  _init_completion -n = || return

  local commands='build bake images import du info inspect login logout manifest prune pull push rmi store tag timeline version help'

  # The verb is the first word after "ocib" that is not an option; a subcommand the next.
  local verb="" sub="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -*) ;;
      *) if [[ -z $verb ]]; then verb=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
    esac
  done

  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W '--help --version' -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local flags="" args="" subs=""
  case $verb in
    build) flags='-f --file -t --tag --target --label --build-context --build-arg --platform -o --output --annotation --ulimit --isolation --add-host --shm-size --check --call --push --iidfile --print --fix --secret --provenance --sbom --attest --load --ssh --pull --insecure-registry --registry-mirror --progress --metadata-file --timeline -j --jobs --no-cache --no-cache-filter --cache-to --cache-from --network --allow -q --quiet -h --help' args=dir ;;
    bake) flags='-f --file --set --print --list --push --load --no-cache --pull --progress --metadata-file --timeline --allow --provenance --sbom --call --check -j --jobs --insecure-registry -h --help' ;;
    images) flags='-h --help' ;;
    import) flags='--platform -h --help' args=file ;;
    du) flags='-h --help' ;;
    info) flags='-h --help' ;;
    inspect) flags='-h --help' ;;
    login) flags='-u --username -p --password --password-stdin --insecure-registry -h --help' ;;
    logout) flags='-h --help' ;;
    manifest)
      subs='create inspect'
      case $sub in
        create) verb=create subs="" flags='-t --tag --insecure-registry -h --help' ;;
        inspect) verb=inspect subs="" flags='--raw --insecure-registry -h --help' ;;
        *) flags='-h --help' ;;
      esac
      ;;
    prune) flags='-a --all -f --force --filter -h --help' ;;
    pull) flags='--insecure-registry -h --help' ;;
    push) flags='--insecure-registry -h --help' ;;
    rmi) flags='-h --help' ;;
    store)
      subs='check'
      case $sub in
        check) verb=check subs="" flags='-h --help' ;;
        *) flags='-h --help' ;;
      esac
      ;;
    tag) flags='-h --help' ;;
    timeline) flags='-h --help' args=json ;;
    version) flags='-h --help' ;;
    *) return ;;
  esac

  # "--flag=value": complete the value, keeping the "--flag=" the word starts with.
  if [[ $cur == --*=* ]]; then
    local flag=${cur%%=*}
    cur=${cur#*=}
    _ocib_value "$verb" "$flag"
    return
  fi
  _ocib_value "$verb" "$prev" && return

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ -n $subs ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    case $args in
      dir) _filedir -d ;;
      file) _filedir ;;
      json) _filedir json ;;
    esac
  fi
} &&
  complete -F _ocib ocib

# ex: filetype=sh
