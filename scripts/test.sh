#!/usr/bin/env bash
# make test: every gate CI runs, in order, with a summary of pass/fail and
# time per gate. Exits non-zero when any gate failed. Each gate is a make
# target that can also be run on its own. The molecule gate runs every
# scenario on each suite of MOLECULE_DISTRO (make test sets it to
# TEST_DISTROS, "trixie bookworm").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

read -r -a gates <<<"${GATES:-lint unit sanity galaxy molecule}"
declare -A result seconds
rc=0
total=$SECONDS
for g in "${gates[@]}"; do
  echo
  echo "################ make $g ################"
  start=$SECONDS
  if make --no-print-directory "$g"; then result[$g]=pass; else result[$g]=FAIL; rc=1; fi
  seconds[$g]=$((SECONDS - start))
done

echo
echo "================ make test summary ================"
for g in "${gates[@]}"; do
  printf '  %-10s %-5s %5s s\n' "$g" "${result[$g]}" "${seconds[$g]}"
done
[[ -f build/pytest-summary.txt ]] && echo "  pytest: $(cat build/pytest-summary.txt)"
printf '  %-10s %-5s %5s s\n' total "$([[ $rc == 0 ]] && echo pass || echo FAIL)" "$((SECONDS - total))"
exit $rc
