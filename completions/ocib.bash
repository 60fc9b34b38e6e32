# bash completion for ocib(1)                                   -*- shell-script -*-
# Installed as ${datadir}/bash-completion/completions/ocib (loaded on demand).
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom

_ocib() {
  local cur prev words cword
  _init_completion -n = || return

  local commands="bake build du images import info inspect login logout manifest prune pull push rmi store tag timeline version help"

  # The verb is the first word after "ocib" that is not a global option.
  local verb="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -*) ;;
      *) verb=${words[i]}; break ;;
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

  case $verb in
    build) ;;
    bake)
      # ocib bake [OPTIONS] [TARGET|GROUP...]
      if [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
      fi
      case $prev in
        -f | --file | --metadata-file | --timeline) _filedir; return ;;
        --progress) COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur")); return ;;
        --list) COMPREPLY=($(compgen -W 'targets' -- "$cur")); return ;;
        --call) COMPREPLY=($(compgen -W 'build check' -- "$cur")); return ;;
        --allow) COMPREPLY=($(compgen -W 'security.insecure network.host' -- "$cur")); return ;;
        --set | -j | --jobs | --provenance | --sbom | --insecure-registry) return ;;
      esac
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-f --file --set --print --list --push --load --no-cache --pull --progress
          --metadata-file --timeline --allow --provenance --sbom --call --check -j --jobs --insecure-registry -h --help' -- "$cur"))
      else
        # The targets and groups of the bake file here (what --list=targets prints).
        local names
        names=$(ocib bake --list=targets 2>/dev/null | awk 'NR > 1 {print $1}')
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
      fi
      return
      ;;
    timeline)
      # ocib timeline METADATA.json: the file --metadata-file wrote.
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '--help' -- "$cur"))
      else
        _filedir json
      fi
      return
      ;;
    *)
      [[ $cur == -* ]] && COMPREPLY=($(compgen -W '--help' -- "$cur"))
      return
      ;;
  esac

  # ocib build: "--opt=value" forms.
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    cur=${cur#*=}
    case $prev in
      --file | --metadata-file | --timeline) _filedir ;;
      --progress) COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur")) ;;
      --network) COMPREPLY=($(compgen -W 'default none host' -- "$cur")) ;;
      --output) COMPREPLY=($(compgen -W 'type=oci,dest= type=oci-layout,dest=' -- "$cur")); compopt -o nospace ;;
    esac
    return
  fi

  case $prev in
    -f | --file | --metadata-file | --timeline)
      _filedir
      return
      ;;
    -o | --output)
      COMPREPLY=($(compgen -W 'type=oci,dest= type=oci-layout,dest=' -- "$cur"))
      compopt -o nospace
      return
      ;;
    --progress)
      COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur"))
      return
      ;;
    --network)
      COMPREPLY=($(compgen -W 'default none host' -- "$cur"))
      return
      ;;
    --platform)
      COMPREPLY=($(compgen -W 'linux/amd64 linux/arm64 linux/amd64,linux/arm64' -- "$cur"))
      return
      ;;
    --pull)
      COMPREPLY=($(compgen -W 'always missing never' -- "$cur"))
      return
      ;;
    --print)
      COMPREPLY=($(compgen -W 'graph graph-json lint plan' -- "$cur"))
      return
      ;;
    --allow)
      COMPREPLY=($(compgen -W 'security.insecure network.host' -- "$cur"))
      return
      ;;
    -t | --tag | --target | --build-arg | -j | --jobs | --label | --build-context | --secret | --ssh | --provenance | --sbom | --attest | \
      --insecure-registry | --registry-mirror | --no-cache-filter | --cache-to | --cache-from | --add-host | --shm-size | --isolation | --annotation | --ulimit)
      return
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W '-f --file -t --tag --target --label --build-context --build-arg
      --platform -o --output --iidfile --print --secret --ssh --pull --insecure-registry --registry-mirror
      --progress --metadata-file --timeline -j --jobs --no-cache --no-cache-filter --cache-to --cache-from
      --network --allow --fix --check --call --ulimit --annotation --isolation --add-host --shm-size --push --load --provenance --sbom --attest -q --quiet -h --help' -- "$cur"))
  else
    _filedir -d
  fi
} &&
  complete -F _ocib ocib

# ex: filetype=sh
