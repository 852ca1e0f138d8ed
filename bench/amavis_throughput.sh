#!/usr/bin/env bash
# Benchmark (issue 11): mail throughput through amavis with ClamAV and
# SpamAssassin, against the same server with the amavis role switched off,
# in one run. Two containers of the locally built image on their own docker
# network: the server (postfix + the amavis role, bench/amavis_throughput.yml)
# and a client that sends with Postfix's smtp-source.
#
#   on    BENCH_MESSAGES messages (default 1000) in BENCH_SESSIONS parallel
#         SMTP sessions (default 10) from the client to the server's port 25,
#         to a local user; timed from the first connection until the last
#         message is in the user's Maildir. The resident memory (RSS) of all
#         amavisd processes together and of clamd is sampled every second;
#         the peak is reported.
#   off   the role run again with amavis_enabled=false (the Postfix fragment is
#         removed, amavis and clamd stop), then the same sending.
#
# ClamAV's database here is the test signatures only (freshclam cannot reach
# its mirror), so clamd's RSS is far below the ~1 GB of the official database.
#
#   MOLECULE_DISTRO=trixie   image suite (trixie or bookworm)
#   BENCH_MESSAGES=1000 BENCH_SESSIONS=10 BENCH_SIZE=4096 (bytes per message)
#   BENCH_KEEP=1             keep the containers, the network and the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=1
# shellcheck source=bench/lib.sh
. bench/lib.sh

distro=${MOLECULE_DISTRO:-trixie}
messages=${BENCH_MESSAGES:-1000}
sessions=${BENCH_SESSIONS:-10}
size=${BENCH_SIZE:-4096}
net=pm-bench-amavis
server=pm-bench-amavis-server
client=pm-bench-amavis-client
die() { echo "amavis_throughput.sh: $*" >&2; exit 1; }
command -v ansible-playbook >/dev/null || die "no ansible-playbook in .venv; run make setup"
image=$(bench_image "$distro")
work=$(mktemp -d "/tmp/$net.XXXXXX")

cleanup() {
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "kept: containers $server and $client, network $net, work directory $work"
    return
  fi
  docker rm -f "$server" "$client" >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME HOSTNAME: a systemd container on the benchmark's network.
start() {
  docker rm -f "$1" >/dev/null 2>&1 || true
  docker run -d --name "$1" --hostname "$2" --network "$net" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host --add-host apt-cache:host-gateway \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --security-opt seccomp=unconfined "$image" /sbin/init >/dev/null
}
booted() {
  local state _i
  for _i in $(seq 60); do
    state=$(docker exec "$1" systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && return 0
    sleep 1
  done
  die "$1 did not finish booting (systemd state: ${state:-unknown})"
}
seconds() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

echo "==> starting $server and $client ($image) on network $net"
docker network rm "$net" >/dev/null 2>&1 || true
docker network create "$net" >/dev/null
start "$server" mail.example.test
start "$client" client.outside.test
booted "$server"
booted "$client"
server_ip=$(docker inspect --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$server")

cat >"$work/inventory.yml" <<INV
all:
  children:
    mail:
      hosts:
        $server:
          ansible_connection: community.docker.docker
          ansible_python_interpreter: /usr/bin/python3
INV

# converge LABEL [ARGS...]: the benchmark playbook; its log in the work directory.
converge() {
  local label=$1
  shift
  ansible-playbook -i "$work/inventory.yml" "$@" bench/amavis_throughput.yml >"$work/$label.log" 2>&1 \
    || { tail -30 "$work/$label.log" >&2; die "$label failed ($work/$label.log)"; }
}

echo "==> converging postfix and amavis on $server"
converge converge
echo "==> installing smtp-source (postfix) on $client"
docker exec "$client" sh -c 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections &&
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix' >"$work/client.log" 2>&1 \
  || { tail -20 "$work/client.log" >&2; die "installing postfix on the client failed"; }

# rss PATTERN: the summed RSS (MB) of the server's processes whose command line matches PATTERN.
rss() {
  docker exec "$server" ps -eo rss=,args= | awk -v p="$1" '$0 ~ p {s += $1} END {printf "%d", s / 1024}'
}

# send LABEL: smtp-source from the client; print "seconds peak_amavis_mb peak_clamd_mb".
send() {
  local label=$1 t0 t1 count=0 peak_amavis=0 peak_clamd=0 a c _i
  docker exec "$server" sh -c 'rm -rf /home/bench/Maildir/new/* /home/bench/Maildir/cur/*; postsuper -d ALL >/dev/null 2>&1 || true'
  t0=$(date +%s.%N)
  docker exec "$client" /usr/sbin/smtp-source -s "$sessions" -m "$messages" -l "$size" -c \
    -f bench@mail.example.test -t bench@mail.example.test "$server_ip:25" >"$work/$label-smtp-source.log" 2>&1 &
  local sender=$!
  for _i in $(seq 1800); do
    a=$(rss '/usr/sbin/amavisd')
    c=$(rss '/usr/sbin/clamd')
    ((a > peak_amavis)) && peak_amavis=$a
    ((c > peak_clamd)) && peak_clamd=$c
    count=$(docker exec "$server" sh -c 'ls /home/bench/Maildir/new 2>/dev/null | wc -l')
    ((count >= messages)) && break
    sleep 1
  done
  t1=$(date +%s.%N)
  wait "$sender" || die "smtp-source failed ($work/$label-smtp-source.log)"
  ((count >= messages)) || die "$label: only $count of $messages messages arrived in 30 minutes"
  echo "$(seconds "$t0" "$t1") $peak_amavis $peak_clamd"
}

echo "==> $messages messages, $sessions sessions, amavis with ClamAV and SpamAssassin on"
read -r on_s on_amavis on_clamd < <(send on)
on_servers=$(docker exec "$server" sh -c "grep -Eo '^\\\$max_servers = [0-9]+' /etc/amavis/conf.d/60-postmaster | grep -Eo '[0-9]+'")
echo "==> the amavis role switched off (amavis_enabled=false)"
converge off -e amavis_enabled=false
echo "==> $messages messages, $sessions sessions, without amavis"
read -r off_s _ _ < <(send off)

rate() { awk -v m="$messages" -v s="$1" 'BEGIN {printf "%.1f", m / s}'; }
printf '\namavis throughput (%s, %s): %s messages of %s bytes, %s SMTP sessions (smtp-source)\n' \
  "$distro" "$image" "$messages" "$size" "$sessions"
printf '  %-44s %7s s %8s msg/s   peak RSS: amavis %s MB (%s servers + master), clamd %s MB\n' \
  "amavis + ClamAV + SpamAssassin" "$on_s" "$(rate "$on_s")" "$on_amavis" "$on_servers" "$on_clamd"
printf '  %-44s %7s s %8s msg/s\n' "amavis role off (fragment removed)" "$off_s" "$(rate "$off_s")"
printf '  %-44s %7s x\n' "ratio (off / on, messages per second)" "$(awk -v a="$on_s" -v b="$off_s" 'BEGIN {printf "%.1f", a / b}')"
