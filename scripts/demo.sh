#!/usr/bin/env bash
# make demo: start two disposable systemd containers on a network of their
# own, "the VPS" (pm-demo, mail.example.test) and "an outside host"
# (pm-demo-client), apply playbooks/site.yml to the VPS over the docker
# connection, then run the verify role from the outside host: submission with
# AUTH after STARTTLS, delivery read over IMAP, open relay refused, closed
# ports closed. It ends with a short summary: what runs on which port, each
# check's result, and the DNS records to publish.
#
# The Ansible output goes to build/demo/site.log (only the task names are
# shown); the summary is also in build/demo/report.txt. DEMO_KEEP=1 leaves the containers running for you to explore
# (docker exec -it pm-demo bash); otherwise they are removed at the end.
# The verify role also sends the EICAR test file, which amavis must stop;
# DEMO_EICAR=0 leaves that check out.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_PIPELINING=1

distro=${MOLECULE_DISTRO:-trixie}
if [[ $distro == *" "* ]]; then
  echo "make demo uses one suite, not '$distro': MOLECULE_DISTRO=trixie or bookworm" >&2
  exit 2
fi
image=$(scripts/image.sh tag "$distro")
server=pm-demo
client=pm-demo-client
net=pm-demo
out=build/demo
mkdir -p "$out"
start=$SECONDS

cleanup() {
  docker rm -f "$server" "$client" >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}
inv=$(mktemp /tmp/pm-demo-inventory.XXXXXX.yml)
trap 'rm -f "$inv"; [[ ${DEMO_KEEP:-0} == 1 ]] || cleanup' EXIT
cleanup
docker network create "$net" >/dev/null
# apt-cache: the host's apt-cacher-ng, when make setup could start it (see
# scripts/ensure-apt-cache.sh and scripts/image.sh).
for spec in "$server:mail.example.test" "$client:client.outside.test"; do
  docker run -d --name "${spec%%:*}" --hostname "${spec#*:}" --network "$net" \
    --add-host apt-cache:host-gateway \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --security-opt seccomp=unconfined "$image" /sbin/init >/dev/null
done
# Wait for systemd to finish booting; right after the start its bus may not
# answer yet, and then systemctl prints nothing.
for name in "$server" "$client"; do
  for _ in $(seq 1 30); do
    [[ -n $(docker exec "$name" systemctl is-system-running --wait 2>/dev/null) ]] && break
    sleep 1
  done
done
address() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
echo "==> the VPS: $server ($distro, mail.example.test, $(address "$server"));" \
  "the outside host: $client ($(address "$client")), on network $net"

cat >"$inv" <<INV
all:
  vars:
    ansible_connection: community.docker.docker
    ansible_python_interpreter: /usr/bin/python3
  children:
    mail:
      hosts:
        $server:
    clients:
      hosts:
        $client:
INV

# Prints each role's name as the play reaches it (the whole output is in the
# log); on failure, the log's errors are shown.
run() {
  local log=$1
  shift
  ansible-playbook -i "$inv" "$@" 2>&1 | tee "$log" |
    awk -F'[][]' '/^TASK \[postmaster\.mailserver\./ { split($2, a, " : "); role = a[1]; sub(/^postmaster\.mailserver\./, "", role)
                    if (!(role in seen)) { printf "  %s\n", role; fflush(); seen[role] = 1 } }' || true
  if grep -qE '^fatal:|failed=[1-9]|unreachable=[1-9]|^ERROR' "$log"; then
    echo "==> failed; the end of $log:" >&2
    grep -E -A25 '^fatal:|^ERROR' "$log" | head -60 >&2
    return 1
  fi
}

# One run of site.yml with every role, the verify role last (verify_enabled),
# which probes the VPS from the outside host (verify_probe_host).
echo "==> applying playbooks/site.yml to the VPS, then the verify role from the outside host (log: $out/site.log)"
rm -f "$out/report.txt"
extra=()
[[ ${DEMO_EICAR:-1} == 0 ]] && extra=(-e verify_eicar=false)
rc=0
t=$SECONDS
run "$out/site.log" playbooks/site.yml -e @scripts/demo-vars.yml -e verify_enabled=true \
  -e "verify_report_file=$PWD/$out/report.txt" "${extra[@]}" || rc=$?
site_time=$((SECONDS - t))

echo
if [[ -s $out/report.txt ]]; then
  cat "$out/report.txt"
else
  echo "(no report was written; see $out/verify.log)"
fi
echo
echo "site.yml with the verify role: $site_time s; make demo: $((SECONDS - start)) s in all."
if ((rc != 0)); then
  echo "==> the verify role found problems (listed above)" >&2
  exit "$rc"
fi
if [[ ${DEMO_KEEP:-0} == 1 ]]; then
  echo "The containers keep running: docker exec -it $server bash (and $client); make demo removes them next time."
fi
