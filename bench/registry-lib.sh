# Sourced by bench/pull.sh and bench/registry.sh: a loopback docker-registry and the image of
# random layers they move. The caller sets `work` (a scratch directory) and an EXIT trap that
# calls stop_registry.

now() { date +%s.%N; }
sec() { echo "$2 - $1" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

reg_pid=""
reg=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop_registry() { [[ -z $reg_pid ]] || { kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null || true; }; reg_pid=""; }
# start_registry: the registry on $reg with empty storage (no blob is there yet, none to mount).
start_registry() {
  stop_registry
  rm -rf "$work/regdata"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$work/regdata" "$reg" >"$work/reg.yml"
  docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 100); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$reg/v2/") != 000 ]] && return; sleep 0.1; done
  echo "registry did not start" >&2
  exit 1
}

# random_layers_context DIR LAYERS MB: a context whose Dockerfile makes LAYERS layers (busybox,
# then LAYERS-1 of MB MiB of random bytes each).
random_layers_context() {
  local dir=$1 layers=$2 mb=$3 i
  mkdir -p "$dir"
  cp /bin/busybox "$dir/busybox"
  {
    echo "FROM scratch"
    echo "COPY busybox /bin/busybox"
    for i in $(seq 2 "$layers"); do
      echo "RUN [\"/bin/busybox\", \"dd\", \"if=/dev/urandom\", \"of=/data$i\", \"bs=1048576\", \"count=$mb\"]"
    done
  } >"$dir/Dockerfile"
}
