#!/usr/bin/env bash
# Remove every container and network the test suite or the demo made.
# They are all named pm-*; nothing else on the machine is touched.
set -uo pipefail
docker info >/dev/null 2>&1 || exit 0
mapfile -t containers < <(docker ps -aq --filter name='^pm-')
if ((${#containers[@]})); then
  docker rm -f "${containers[@]}" >/dev/null && echo "removed containers: ${#containers[@]}"
fi
mapfile -t networks < <(docker network ls -q --filter name='^pm-')
if ((${#networks[@]})); then
  docker network rm "${networks[@]}" >/dev/null && echo "removed networks: ${#networks[@]}"
fi
exit 0
