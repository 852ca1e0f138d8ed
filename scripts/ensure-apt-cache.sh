#!/usr/bin/env bash
# Start apt-cacher-ng in the background unless it already answers on the
# docker bridge, so that every test container (and the demo) downloads each
# Debian package from the mirror once per machine instead of once per
# scenario and suite.
#
# The containers reach it as http://apt-cache:3142: molecule and the demo map
# the name apt-cache to docker's host-gateway (the docker0 address), and the
# images' apt asks /usr/local/lib/postmaster/apt-proxy whether that answers
# (see scripts/image.sh); when it does not, apt goes to the mirror directly.
#
# It listens on loopback and the docker0 address only, not on every address
# of the machine, so that it is not an open proxy on a public host. There is
# no systemd here: it runs as its own user with start-stop-daemon, like
# Debian's init script does. Requests for any Debian mirror are fetched from
# the one the images are built from (DEBIAN_MIRROR, default deb.debian.org),
# not from the package's default backend (ftp.debian.org), which a machine
# that may only reach deb.debian.org cannot resolve. Where systemd already runs apt-cacher-ng (its
# package starts it there) and it answers on docker0, that one is used.
set -euo pipefail

user=apt-cacher-ng
daemon=/usr/sbin/apt-cacher-ng
rundir=/run/apt-cacher-ng
port=3142
# The mirror the images are built from (scripts/image.sh).
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$port" 2>/dev/null; }

if [[ ! -x $daemon ]]; then
  echo "==> apt-cacher-ng is not installed (make setup installs it); containers download directly" >&2
  exit 1
fi
gateway=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
if [[ -z $gateway ]]; then
  echo "==> no docker0 address (is dockerd running?); apt-cacher-ng not started" >&2
  exit 1
fi

if answers "$gateway"; then
  echo "==> apt-cacher-ng answers on $gateway:$port"
  exit 0
fi

# Ours may be running from before docker0 got another address: restart it.
if [[ -f $rundir/pid ]] && kill -0 "$(cat "$rundir/pid")" 2>/dev/null; then
  echo "==> apt-cacher-ng runs but not on $gateway: restarting it"
  start-stop-daemon --stop --retry 10 --quiet --pidfile "$rundir/pid" --exec "$daemon" || true
fi

echo "==> starting apt-cacher-ng on 127.0.0.1 and $gateway, port $port"
rm -rf "$rundir"
install -d -m 0755 -o "$user" -g "$user" "$rundir"
# The cache and log directories must be writable by the daemon's user. The
# package creates them so, but a run as root (by hand) leaves root's files.
install -d -m 2755 -o "$user" -g "$user" /var/cache/apt-cacher-ng /var/log/apt-cacher-ng
find /var/cache/apt-cacher-ng /var/log/apt-cacher-ng ! -user "$user" -exec chown -h "$user:$user" {} +
start-stop-daemon --start --quiet --chuid "$user:$user" --pidfile "$rundir/pid" --exec "$daemon" -- \
  -c /etc/apt-cacher-ng ForeGround=0 "pidfile=$rundir/pid" "SocketPath=$rundir/socket" \
  "Port=$port" "BindAddress=127.0.0.1 $gateway" \
  "Remap-debrep=file:deb_mirror*.gz /debian ; $mirror" </dev/null
for _ in $(seq 1 20); do
  if answers "$gateway"; then
    echo "==> apt-cacher-ng is up (cache /var/cache/apt-cacher-ng, log /var/log/apt-cacher-ng)"
    exit 0
  fi
  sleep 0.5
done
echo "apt-cacher-ng did not answer on $gateway:$port within 10 s; last log lines:" >&2
tail -20 /var/log/apt-cacher-ng/apt-cacher.err >&2 2>/dev/null || true
exit 1
