#!/usr/bin/env bash
# make demo: start a disposable systemd container as "the VPS", apply
# playbooks/site.yml to it over the docker connection, and print what it set
# up. DEMO_KEEP=1 leaves the container running for you to explore
# (docker exec -it pm-demo bash); otherwise it is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1

distro=${MOLECULE_DISTRO:-trixie}
if [[ $distro == *" "* ]]; then
  echo "make demo uses one suite, not '$distro': MOLECULE_DISTRO=trixie or bookworm" >&2
  exit 2
fi
image=$(scripts/image.sh tag "$distro")
name=pm-demo
net=pm-demo

cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; docker network rm "$net" >/dev/null 2>&1 || true; }
if [[ ${DEMO_KEEP:-0} != 1 ]]; then trap cleanup EXIT; fi
cleanup
docker network create "$net" >/dev/null
# apt-cache: the host's apt-cacher-ng, when make setup could start it (see
# scripts/ensure-apt-cache.sh and scripts/image.sh).
docker run -d --name "$name" --hostname mail.example.test --network "$net" \
  --add-host apt-cache:host-gateway \
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  --security-opt seccomp=unconfined "$image" /sbin/init >/dev/null
# Wait for systemd to finish booting; right after the start its bus may not
# answer yet, and then systemctl prints nothing.
for _ in $(seq 1 30); do
  [[ -n $(docker exec "$name" systemctl is-system-running --wait 2>/dev/null) ]] && break
  sleep 1
done
echo "==> the VPS: container $name ($distro), $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")"

inv=$(mktemp /tmp/pm-demo-inventory.XXXXXX.yml)
trap 'rm -f "$inv"; [[ ${DEMO_KEEP:-0} == 1 ]] || cleanup' EXIT
cat > "$inv" <<INV
all:
  children:
    mail:
      hosts:
        $name:
          ansible_connection: community.docker.docker
          ansible_python_interpreter: /usr/bin/python3
INV
start=$SECONDS
ansible-playbook -i "$inv" playbooks/site.yml
echo "==> site.yml applied in $((SECONDS - start)) s"
ansible-playbook -i "$inv" playbooks/report.yml
