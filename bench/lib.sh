# shellcheck shell=bash
# Shared by the bench scripts (sourced after `cd` to the repository root):
# the disposable systemd container, built from the local image, and its
# clean-up, which also removes the caller's work directory. BENCH_KEEP=1
# keeps both. The caller defines die().
bench_name=""
bench_work=""

# bench_image SUITE: print the tag of the locally built image, or fail.
bench_image() {
  local image
  image=$(scripts/image.sh tag "$1")
  docker image inspect "$image" >/dev/null 2>&1 || die "image $image not built; run make setup"
  echo "$image"
}

bench_cleanup() {
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "kept: container $bench_name, work directory $bench_work"
  else
    docker rm -f "$bench_name" >/dev/null 2>&1 || true
    rm -rf "$bench_work"
  fi
}

# bench_start NAME IMAGE WORK: (re)start container NAME as a systemd host and
# wait for it to boot; NAME and the directory WORK go at exit.
bench_start() {
  bench_name=$1 bench_work=$3
  trap bench_cleanup EXIT
  docker rm -f "$bench_name" >/dev/null 2>&1 || true
  echo "==> starting $bench_name ($2)"
  docker run -d --name "$bench_name" --hostname mail.example.test \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host --add-host apt-cache:host-gateway \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --security-opt seccomp=unconfined "$2" /sbin/init >/dev/null
  local state _i
  for _i in $(seq 60); do
    state=$(in_box systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && return 0
    sleep 1
  done
  die "$bench_name did not finish booting (systemd state: ${state:-unknown})"
}

in_box() { docker exec -i "$bench_name" "$@"; }

# bench_inventory FILE [VAR: VALUE ...]: an inventory with the container in
# group `bench` over the docker connection, plus the given host variables.
bench_inventory() {
  local file=$1 var
  shift
  {
    printf 'all:\n  children:\n    bench:\n      hosts:\n        %s:\n' "$bench_name"
    printf '          ansible_connection: community.docker.docker\n'
    printf '          ansible_python_interpreter: /usr/bin/python3\n'
    for var in "$@"; do printf '          %s\n' "$var"; done
  } >"$file"
}
