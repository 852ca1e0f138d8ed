#!/usr/bin/env bash
# Start dockerd in the background unless a daemon already answers.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "==> dockerd is running"
  exit 0
fi
echo "==> starting dockerd"
log=${DOCKERD_LOG:-/var/log/postmaster-dockerd.log}
nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "==> dockerd is up"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not come up within 60 s; last log lines:" >&2
tail -20 "$log" >&2
exit 1
