#!/usr/bin/env bash
# Remove every container and network the test suite or the demo made.
# They are all named pm-*; nothing else on the machine is touched.
set -uo pipefail
docker info >/dev/null 2>&1 || exit 0
containers=$(docker ps -aq --filter name='^pm-')
[[ -n $containers ]] && docker rm -f $containers >/dev/null && echo "removed containers: $(echo $containers | wc -w)"
networks=$(docker network ls -q --filter name='^pm-')
[[ -n $networks ]] && docker network rm $networks >/dev/null && echo "removed networks: $(echo $networks | wc -w)"
exit 0
