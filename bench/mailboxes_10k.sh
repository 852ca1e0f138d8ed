#!/usr/bin/env bash
# Benchmark: the mailboxes role with 10,000 virtual users across 10 domains,
# on a real Postfix + Dovecot in a disposable container.
#
#   1. set-up (not timed): the postfix and dovecot roles;
#   2. plaintext passwords: first converge, then a re-run (must be changed=0;
#      every stored SHA512-CRYPT hash is verified against its password);
#   3. pre-computed hashes (`hash:`, taken from the file the first run wrote):
#      a re-run (must be changed=0; no crypt at all);
#   4. for comparison, a plain per-user task loop (file per Maildir directory,
#      lineinfile per table line and per passwd line, with hashes given) on
#      BENCH_LOOP_USERS users, first run and re-run, extrapolated linearly to
#      the full count. The loop does less than the role (no IMAP folders, no
#      validation, no catch-all logic), so its extrapolation is a lower bound.
#
# Runs from a fresh clone after `make setup`; the container pm-bench-mailboxes
# is always removed at the end.
#
#   BENCH_DOMAINS=10 BENCH_PER_DOMAIN=1000   users = domains x per domain
#   BENCH_LOOP_USERS=100                     users of the per-user loop (about 0.8 s per item)
#   MOLECULE_DISTRO=bookworm                 image suite
#   BENCH_KEEP=1                             keep the container and work directory
#
# The inventory turns on pipelining (ansible_pipelining: true, as on any
# production SSH set-up); the hash re-run is also timed without it. Every run
# is timed twice: the whole ansible-playbook process (wall clock: Python
# start-up, parsing the 10,000-user extra vars, facts, tasks) and its tasks
# alone (profile_tasks: from the first task, facts included, to the end).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1
# shellcheck source=bench/lib.sh
. bench/lib.sh
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks

domains=${BENCH_DOMAINS:-10}
per_domain=${BENCH_PER_DOMAIN:-1000}
loop_users=${BENCH_LOOP_USERS:-100}
distro=${MOLECULE_DISTRO:-bookworm}
name=pm-bench-mailboxes
playbook=bench/mailboxes_10k.yml
total=$((domains * per_domain))

die() { echo "mailboxes_10k.sh: $*" >&2; exit 1; }

for v in "$domains" "$per_domain" "$loop_users"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "counts must be positive integers"; done
command -v ansible-playbook >/dev/null || die "no ansible-playbook in .venv; run make setup"
image=$(bench_image "$distro")
work=$(mktemp -d "/tmp/$name.XXXXXX")
bench_start "$name" "$image" "$work"

bench_inventory "$work/inventory.yml" "ansible_pipelining: true"

# play TAG LOG [ARGS...]: run the playbook with TAG (TAG setup: the set-up
# playbook), print its wall-clock seconds.
play() {
  local tag=$1 log=$2 t0 t1 book=$playbook tags=$1
  shift 2
  if [[ $tag == setup ]]; then book=bench/mailboxes_10k_setup.yml tags=all; fi
  t0=$(date +%s.%N)
  ansible-playbook -i "$work/inventory.yml" --tags "$tags" "$@" "$book" >"$log" 2>&1 \
    || { tail -30 "$log" >&2; die "ansible-playbook --tags $tag failed ($log)"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
}
recap_changed() { grep -Eo 'changed=[0-9]+' "$1" | tail -1 | cut -d= -f2; }
# tasks_time LOG: seconds from the first task to the end (profile_tasks' last elapsed stamp).
tasks_time() {
  grep -Eo '[0-9]+:[0-9]{2}:[0-9]{2}\.[0-9]+ \*+ *$' "$1" | tail -1 \
    | awk -F'[: ]' '{printf "%.2f\n", $1 * 3600 + $2 * 60 + $3}'
}

echo "==> set-up: postfix and dovecot roles (not timed)"
play setup "$work/setup.log" >/dev/null

echo "==> generating $total users ($domains domains x $per_domain)"
python3 - "$domains" "$per_domain" "$work/plain.json" <<'PY'
import json, sys
domains, per, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = {"mailboxes_domains": [
    {"name": f"d{d}.bench.test",
     "users": [{"name": f"user{u}", "password": f"Bench-{d}-{u}-password"} for u in range(per)]}
    for d in range(domains)]}
json.dump(data, open(out, "w"))
PY

t_first=$(play role "$work/plain.first.log" -e "@$work/plain.json")
c_first=$(recap_changed "$work/plain.first.log")
echo "    plaintext, first converge: $t_first s (changed=$c_first)"
t_plain=$(play role "$work/plain.rerun.log" -e "@$work/plain.json")
c_plain=$(recap_changed "$work/plain.rerun.log")
echo "    plaintext, re-run:         $t_plain s (changed=$c_plain)"
[[ $c_plain == 0 ]] || die "plaintext re-run reported changed=$c_plain"

echo "==> checking the result"
lines=$(in_box wc -l </dev/null /etc/dovecot/postmaster-mailboxes.users | awk '{print $1}')
[[ $lines == "$total" ]] || die "passwd-file has $lines lines, want $total"
maildirs=$(in_box find /var/mail/vmail -mindepth 3 -maxdepth 3 -name cur | wc -l)
[[ $maildirs == "$total" ]] || die "$maildirs Maildirs, want $total"
last="user$((per_domain - 1))@d$((domains - 1)).bench.test"
in_box postmap -q "$last" hash:/etc/postfix/vmailbox >/dev/null || die "$last missing from the vmailbox table"
echo "    $lines passwd-file lines, $maildirs Maildirs, $last in the vmailbox table"

echo "==> pre-computed hashes (from the file written above)"
in_box cat /etc/dovecot/postmaster-mailboxes.users >"$work/users.file"
python3 - "$work/users.file" "$domains" "$per_domain" "$work/hash.json" "$loop_users" "$work/loop.json" <<'PY'
import json, sys
path, domains, per, out, loop_n, loop_out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
hashes = {line.split(":")[0]: line.split(":")[1] for line in open(path) if line.strip()}
data = {"mailboxes_domains": [
    {"name": f"d{d}.bench.test",
     "users": [{"name": f"user{u}", "hash": hashes[f"user{u}@d{d}.bench.test"]} for u in range(per)]}
    for d in range(domains)]}
json.dump(data, open(out, "w"))
users = [{"domain": f"d{d}.bench.test", "local": f"user{u}", "hash": hashes[f"user{u}@d{d}.bench.test"]}
         for d in range(domains) for u in range(per)][:loop_n]
json.dump({"bench_loop_users": users}, open(loop_out, "w"))
PY
t_hash=$(play role "$work/hash.rerun.log" -e "@$work/hash.json")
c_hash=$(recap_changed "$work/hash.rerun.log")
echo "    hashes, re-run:            $t_hash s (changed=$c_hash)"
[[ $c_hash == 0 ]] || die "hash re-run reported changed=$c_hash"
t_nopipe=$(play role "$work/hash.nopipe.log" -e "@$work/hash.json" -e ansible_pipelining=false)
c_nopipe=$(recap_changed "$work/hash.nopipe.log")
echo "    hashes, re-run, no pipelining: $t_nopipe s (changed=$c_nopipe)"
[[ $c_nopipe == 0 ]] || die "hash re-run without pipelining reported changed=$c_nopipe"

echo "==> per-user task loop, $loop_users users"
t_loop1=$(play loop "$work/loop.first.log" -e "@$work/loop.json")
t_loop2=$(play loop "$work/loop.rerun.log" -e "@$work/loop.json")
c_loop2=$(recap_changed "$work/loop.rerun.log")
echo "    loop first run $t_loop1 s, re-run $t_loop2 s (changed=$c_loop2)"

# Ansible's start-up and fact gathering are paid once per run: measure them
# with an empty loop and extrapolate only the per-user part.
echo '{"bench_loop_users": []}' >"$work/loop0.json"
t_loop0=$(play loop "$work/loop0.log" -e "@$work/loop0.json")
extra() { awk -v t="$1" -v z="$t_loop0" -v n="$loop_users" -v N="$total" 'BEGIN {printf "%.0f", z + (t - z) * N / n}'; }
x_first=$(extra "$t_loop1")
x_rerun=$(extra "$t_loop2")

both() { printf '%7.2f (tasks %6.2f)' "$1" "$(tasks_time "$2")"; }
cat <<REPORT

mailboxes benchmark: $total virtual users in $domains domains, $distro container, 2-core host
(seconds: the whole ansible-playbook run over the docker connection, and in brackets its
tasks alone, from fact gathering to the end; pipelining on unless said otherwise)

  mailboxes role, plaintext passwords   first converge $(both "$t_first" "$work/plain.first.log") changed=$c_first
                                        re-run         $(both "$t_plain" "$work/plain.rerun.log") changed=$c_plain
  mailboxes role, pre-computed hashes   re-run         $(both "$t_hash" "$work/hash.rerun.log") changed=$c_hash
                 the same, pipelining off              $(both "$t_nopipe" "$work/hash.nopipe.log") changed=$c_nopipe
  per-user task loop, $loop_users users (measured) first run $(printf '%8.2f' "$t_loop1")   re-run $(printf '%7.2f' "$t_loop2")
  per-user task loop, $total users (EXTRAPOLATED, lower bound: no folders, no validation)
                                        first run $(printf '%8s' "~$x_first")   re-run $(printf '%7s' "~$x_rerun")
  (empty loop play, the fixed cost subtracted before extrapolating: $t_loop0 s)
REPORT
