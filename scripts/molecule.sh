#!/usr/bin/env bash
# make molecule [SCENARIO=name] [MOLECULE_DISTRO=bookworm|trixie|bullseye]
#
# Runs `molecule test` for one scenario, or for every scenario under
# molecule/. The image for the chosen distro must exist (make setup builds
# it). Every scenario's containers and network are destroyed afterwards, also
# when it fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH="$PWD/.venv/bin:$PATH"

distro=${MOLECULE_DISTRO:-bookworm}
MOLECULE_IMAGE=$(scripts/image.sh tag "$distro") || exit 2
export MOLECULE_IMAGE MOLECULE_DISTRO=$distro
export MOLECULE_COLLECTIONS_PATH="$PWD/.cache/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1
if ! docker image inspect "$MOLECULE_IMAGE" >/dev/null 2>&1; then
  echo "image $MOLECULE_IMAGE is missing: run make setup (or scripts/image.sh build $distro)" >&2
  exit 2
fi

if [[ -n ${1:-} ]]; then
  scenarios=("$@")
else
  # The slowest scenarios first, so that two at a time pack well.
  mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  scenarios=()
  for s in dovecot relay mailboxes saslauthd postfix; do
    [[ " ${found[*]} " == *" $s "* ]] && scenarios+=("$s")
  done
  for s in "${found[@]}"; do
    [[ " ${scenarios[*]} " == *" $s "* ]] || scenarios+=("$s")
  done
fi

mkdir -p build/molecule
# Scenarios run MOLECULE_JOBS at a time (default 2): most of a scenario's time
# is spent waiting on apt, systemd and mail delivery, not on the CPU.
max_jobs=${MOLECULE_JOBS:-2}
# With one scenario (or one job) the output is streamed as well as logged.
stream=$(( ${#scenarios[@]} == 1 || max_jobs == 1 ))
declare -A result seconds pid_of
rc=0

run_one() {
  local s=$1 log=build/molecule/$1-$distro.log start=$SECONDS
  if if ((stream)); then molecule test -s "$s" 2>&1 | tee "$log"; else molecule test -s "$s" >"$log" 2>&1; fi; then
    echo "pass $((SECONDS - start))" >"$log.result"
  else
    # Make sure nothing is left behind even when molecule died early.
    molecule destroy -s "$s" >>"$log" 2>&1 || true
    echo "FAIL $((SECONDS - start))" >"$log.result"
  fi
}

for s in "${scenarios[@]}"; do
  [[ -f molecule/$s/molecule.yml ]] || { echo "no such scenario: $s" >&2; rc=2; continue; }
  while (($(jobs -rp | wc -l) >= max_jobs)); do wait -n || true; done
  echo "==> molecule test -s $s ($distro), log: build/molecule/$s-$distro.log"
  rm -f "build/molecule/$s-$distro.log.result"
  run_one "$s" &
  pid_of[$s]=$!
done
wait

for s in "${!pid_of[@]}"; do
  read -r "result[$s]" "seconds[$s]" <"build/molecule/$s-$distro.log.result" 2>/dev/null || result[$s]=FAIL
  if [[ ${result[$s]} != pass ]]; then
    rc=1
    echo
    echo "---- $s failed; last lines of build/molecule/$s-$distro.log ----"
    grep -a -E '^(E |FAILED|fatal:|ERROR|CRITICAL)|failed=[1-9]' "build/molecule/$s-$distro.log" | tail -40
    tail -n 30 "build/molecule/$s-$distro.log"
  else
    # The verifier's own summary line, e.g. "26 passed in 140.2s".
    grep -a -E '^=+ .*(passed|failed).* =+$' "build/molecule/$s-$distro.log" | tail -1
  fi
done

echo
echo "molecule summary ($distro, $max_jobs at a time):"
for s in "${scenarios[@]}"; do
  printf '  %-12s %-5s %4s s\n' "$s" "${result[$s]:-n/a}" "${seconds[$s]:-0}"
done
exit $rc
