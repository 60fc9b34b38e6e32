# bash completion for ocib(1)                                   -*- shell-script -*-
# Installed as ${datadir}/bash-completion/completions/ocib (loaded on demand).
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom

_ocib() {
  local cur prev words cword
  _init_completion -n = || return

  local commands="build du images import info inspect login logout prune pull push rmi store tag version help"

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
      --file | --metadata-file) _filedir ;;
      --progress) COMPREPLY=($(compgen -W 'auto tty plain rawjson quiet' -- "$cur")) ;;
      --network) COMPREPLY=($(compgen -W 'none host' -- "$cur")) ;;
      --output) COMPREPLY=($(compgen -W 'type=oci,dest= type=oci-layout,dest=' -- "$cur")); compopt -o nospace ;;
    esac
    return
  fi

  case $prev in
    -f | --file | --metadata-file)
      _filedir
      return
      ;;
    -o | --output)
      COMPREPLY=($(compgen -W 'type=oci,dest= type=oci-layout,dest=' -- "$cur"))
      compopt -o nospace
      return
      ;;
    --progress)
      COMPREPLY=($(compgen -W 'plain quiet' -- "$cur"))
      return
      ;;
    --network)
      COMPREPLY=($(compgen -W 'none host' -- "$cur"))
      return
      ;;
    -t | --tag | --target | --build-arg | -j | --jobs)
      return
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W '-f --file -t --tag --target --build-arg -o --output
      --progress --metadata-file -j --jobs --no-cache --network -q --quiet -h --help --iidfile --secret --pull --insecure-registry --registry-mirror --cache-to --cache-from --print' -- "$cur"))
  else
    _filedir -d
  fi
} &&
  complete -F _ocib ocib

# ex: filetype=sh
