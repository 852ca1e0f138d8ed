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
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
fi

mkdir -p build/molecule
declare -A result seconds
rc=0
for s in "${scenarios[@]}"; do
  [[ -f molecule/$s/molecule.yml ]] || { echo "no such scenario: $s" >&2; rc=2; continue; }
  log=build/molecule/$s-$distro.log
  echo "==> molecule test -s $s ($distro), log: $log"
  start=$SECONDS
  if molecule test -s "$s" 2>&1 | tee "$log"; then
    result[$s]=pass
  else
    result[$s]=FAIL
    rc=1
    # Make sure nothing is left behind even when molecule died early.
    molecule destroy -s "$s" >/dev/null 2>&1 || true
  fi
  seconds[$s]=$((SECONDS - start))
done

echo
echo "molecule summary ($distro):"
for s in "${scenarios[@]}"; do
  printf '  %-12s %-5s %4s s\n' "$s" "${result[$s]:-n/a}" "${seconds[$s]:-0}"
done
exit $rc
