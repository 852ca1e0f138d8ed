#!/usr/bin/env bash
# make molecule [SCENARIO="name ..."] [MOLECULE_DISTRO="trixie bookworm"]
#
# Runs `molecule test` (the full sequence) for the given scenarios, or every
# scenario under molecule/, on each suite in MOLECULE_DISTRO (a
# space-separated list; default trixie; make test passes "trixie bookworm").
# The images must exist (make setup builds them). Each (scenario, suite)
# pair logs to build/molecule/<scenario>-<suite>.log, and its containers and
# network are destroyed afterwards, also when it fails.
#
# All pairs share one pool of MOLECULE_JOBS slots (default 2): most of a
# scenario's time is spent waiting on apt, systemd and mail delivery, not on
# the CPU. A scenario never runs on two suites at the same time: its
# container and network names (pm-<scenario>-*, which the tests use) and
# molecule's state directory (~/.cache/molecule/<project>/<scenario>) do not
# carry the suite, so the two runs would collide. The pairs are queued
# slowest scenario first, each scenario's suites one after the other, and a
# free slot takes the first queued pair whose scenario is not running: so
# different scenarios overlap, and a scenario's second suite starts as soon
# as its first one ends.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH="$PWD/.venv/bin:$PATH"
export MOLECULE_COLLECTIONS_PATH="$PWD/.cache/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1

read -r -a suites <<<"${MOLECULE_DISTRO:-trixie}"
((${#suites[@]})) || suites=(trixie)
declare -A image_of=()
for d in "${suites[@]}"; do
  image_of[$d]=$(scripts/image.sh tag "$d") || exit 2
  if ! docker image inspect "${image_of[$d]}" >/dev/null 2>&1; then
    echo "image ${image_of[$d]} is missing: run make setup (or scripts/image.sh build $d)" >&2
    exit 2
  fi
done

if [[ -n ${1:-} ]]; then
  scenarios=("$@")
else
  # The slowest scenarios first (by the pair times of the last full run,
  # trixie + bookworm, longest first), then those not timed yet (a new
  # scenario is rarely quick), and the quick ones last, shortest at the end,
  # so that the pool packs well: whatever runs alone at the end is short.
  mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  slow=(backup mailboxes policy firewall verify amavis badinput dovecot relay split)
  quick=(saslauthd postfix)
  scenarios=()
  for s in "${slow[@]}"; do
    [[ " ${found[*]} " == *" $s "* ]] && scenarios+=("$s")
  done
  for s in "${found[@]}"; do
    [[ " ${slow[*]} ${quick[*]} " == *" $s "* ]] || scenarios+=("$s")
  done
  for s in "${quick[@]}"; do
    [[ " ${found[*]} " == *" $s "* ]] && scenarios+=("$s")
  done
fi

rc=0
queue=()
for s in "${scenarios[@]}"; do
  if [[ ! -f molecule/$s/molecule.yml ]]; then
    echo "no such scenario: $s" >&2
    rc=2
    continue
  fi
  for d in "${suites[@]}"; do queue+=("$s $d"); done
done
pairs=("${queue[@]}")

# The package cache the containers share (make setup starts it; this only
# restarts it when it went away, e.g. after a reboot).
scripts/ensure-apt-cache.sh || echo "==> no package cache: the containers download from the mirror" >&2

mkdir -p build/molecule
max_jobs=${MOLECULE_JOBS:-2}
# With one pair (or one job) the output is streamed as well as logged.
stream=$((${#pairs[@]} == 1 || max_jobs == 1))

# True when every step of the sequence passed (verify included) and only the
# final destroy failed: molecule-plugins' "Wait for instance(s) deletion"
# (async_status) has lost its AnsiballZ file on a loaded machine
# ("No such file or directory: .../AnsiballZ_docker_container.py").
only_teardown_failed() {
  grep -aq '> verify: Executed: Successful' "$1" || return 1
  ! grep -a -E '> [a-z_]+: Executed: Failed' "$1" | grep -avq '> destroy: Executed: Failed'
}

# The backup scenario restores onto the other suite, and its vault is Debian
# 13 (restic-rest-server): those images are named too.
for d in trixie bookworm; do
  [[ -n ${image_of[$d]:-} ]] || image_of[$d]=$(scripts/image.sh tag "$d") || exit 2
done
export MOLECULE_TRIXIE_IMAGE=${image_of[trixie]}

run_one() {
  local s=$1 d=$2 log=build/molecule/$1-$2.log start=$SECONDS
  export MOLECULE_DISTRO=$d MOLECULE_IMAGE=${image_of[$2]}
  if [[ $d == trixie ]]; then MOLECULE_OTHER_IMAGE=${image_of[bookworm]}; else MOLECULE_OTHER_IMAGE=${image_of[trixie]}; fi
  export MOLECULE_OTHER_IMAGE
  if if ((stream)); then molecule test -s "$s" 2>&1 | tee "$log"; else molecule test -s "$s" >"$log" 2>&1; fi; then
    echo "pass $((SECONDS - start))" >"$log.result"
  elif only_teardown_failed "$log" && molecule destroy -s "$s" >>"$log" 2>&1; then
    # The test passed; the tear-down is repeated and must succeed this time.
    echo "==> $s ($d): every step passed but the destroy, which succeeded when repeated" | tee -a "$log"
    echo "pass $((SECONDS - start))" >"$log.result"
  else
    # Make sure nothing is left behind even when molecule died early.
    molecule destroy -s "$s" >>"$log" 2>&1 || true
    echo "FAIL $((SECONDS - start))" >"$log.result"
  fi
}

declare -A scenario_of=() busy=()
total=$SECONDS
while ((${#queue[@]})); do
  # Fill the free slots with the first queued pairs whose scenario is idle.
  while ((${#scenario_of[@]} < max_jobs)); do
    pick=-1
    for i in "${!queue[@]}"; do
      read -r s _ <<<"${queue[$i]}"
      if [[ -z ${busy[$s]:-} ]]; then pick=$i; break; fi
    done
    ((pick >= 0)) || break
    read -r s d <<<"${queue[$pick]}"
    unset "queue[$pick]"
    queue=("${queue[@]}")
    echo "==> $(date +%T) molecule test -s $s ($d), log: build/molecule/$s-$d.log"
    rm -f "build/molecule/$s-$d.log.result"
    run_one "$s" "$d" &
    scenario_of[$!]=$s
    busy[$s]=1
  done
  ((${#queue[@]})) || break
  # Wait for any pair to end, and free its slot and its scenario.
  done_pid=
  wait -n -p done_pid || true
  [[ -n $done_pid ]] || { echo "molecule.sh: internal error, nothing to wait for" >&2; exit 2; }
  unset "busy[${scenario_of[$done_pid]}]" "scenario_of[$done_pid]"
done
wait

declare -A result=() seconds=()
for p in "${pairs[@]}"; do
  read -r s d <<<"$p"
  log=build/molecule/$s-$d.log
  read -r "result[$p]" "seconds[$p]" <"$log.result" 2>/dev/null || result[$p]=FAIL
  if [[ ${result[$p]} != pass ]]; then
    rc=1
    echo
    echo "---- $s ($d) failed; last lines of $log ----"
    grep -a -E '^(E |FAILED|fatal:|ERROR|CRITICAL)|failed=[1-9]' "$log" | tail -40
    tail -n 30 "$log"
  else
    # The verifier's own summary line, e.g. "26 passed in 140.2s".
    echo "$s ($d): $(grep -a -E '^=+ .*(passed|failed).* =+$' "$log" | tail -1)"
  fi
done

echo
echo "molecule summary (${suites[*]}; $max_jobs at a time; $((SECONDS - total)) s in all):"
printf '  %-12s' scenario
for d in "${suites[@]}"; do printf ' %-14s' "$d"; done
echo
for s in "${scenarios[@]}"; do
  [[ -f molecule/$s/molecule.yml ]] || continue
  printf '  %-12s' "$s"
  for d in "${suites[@]}"; do
    printf ' %-5s %6s s' "${result[$s $d]:-n/a}" "${seconds[$s $d]:-0}"
  done
  echo
done
exit $rc
