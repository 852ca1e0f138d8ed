#!/usr/bin/env bash
# Benchmark: apply 200 main.cf parameters to a real Postfix
#   (a) with postmaster.mailserver.postconf in ONE task, and
#   (b) with one ansible.builtin.command "postconf -e key=value" per key
#       (a 200-iteration loop, the way it is usually done by hand),
# and print wall-clock times (min/median over BENCH_RUNS runs), the ratio, and
# the times of an immediate re-run of each (the module's re-run must report
# changed=0; the loop runs its 200 commands again).
#
# Runs from a fresh clone after `make setup`. It starts a disposable systemd
# container (pm-bench-postconf) from the locally built image, installs postfix
# in it, and always removes it at the end. See bench/README.md.
#
#   BENCH_RUNS=3          runs per method (each run: apply + re-run)
#   BENCH_PARAMS=200      number of parameters
#   MOLECULE_DISTRO=...   image suite (trixie or bookworm)
#   BENCH_KEEP=1          keep the work directory (logs, params) and the container
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1
# shellcheck source=bench/lib.sh
. bench/lib.sh

runs=${BENCH_RUNS:-3}
count=${BENCH_PARAMS:-200}
distro=${MOLECULE_DISTRO:-bookworm}
name=pm-bench-postconf
playbook=bench/postconf_200.yml

die() { echo "postconf_200.sh: $*" >&2; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $count =~ ^[1-9][0-9]*$ ]] || die "BENCH_PARAMS must be a positive integer"
command -v ansible-playbook >/dev/null || die "no ansible-playbook in .venv; run make setup"
image=$(bench_image "$distro")
work=$(mktemp -d "/tmp/$name.XXXXXX")
bench_start "$name" "$image" "$work"

echo "==> installing postfix (debconf: No configuration) and a minimal main.cf"
in_box bash -s >"$work/install.log" 2>&1 <<'SH' || { tail -20 "$work/install.log" >&2; die "postfix install failed"; }
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends postfix </dev/null
cat > /root/main.cf.base <<'CF'
compatibility_level = 3.6
myhostname = mail.example.test
mydestination = $myhostname, localhost
inet_interfaces = loopback-only
alias_maps =
alias_database =
maillog_file = /var/log/postfix-bench.log
CF
cp /root/main.cf.base /etc/postfix/main.cf
postconf mail_version
SH
version="Postfix $(tail -1 "$work/install.log" | sed 's/.*= //')"

# Parameters whose default (expanded) is a plain non-zero integer or time
# value. Left out: reply codes (*_code), concurrency feedback (must be <= 1),
# values that are not tunables (version, pid, compatibility level, port) or
# that change the queue/TCP behaviour in odd ways, and per-transport copies
# for transports other than smtp/relay/lmtp/local/virtual. Parameters with a
# literal default come first, then the $default_* ones, each sorted by name.
# Each is set to its default plus one (same time unit): valid and harmless.
echo "==> choosing $count parameters from postconf -d"
in_box bash -s >"$work/params.txt" <<'SH'
set -euo pipefail
deny='^(compatibility_level|mail_release_date|process_id|milter_protocol|qmgr_fudge_factor|dont_remove|hash_queue_depth|tcp_windowsize|lmtp_tcp_port|.*_code|.*_feedback)$'
transports=$(postconf -M | awk '{print $1}' | sort -u | grep -vxE 'smtp|relay|lmtp|local|virtual' | paste -sd'|')
literal=" $(postconf -d | awk '$2 == "=" && NF == 3 && $3 ~ /^[0-9]+[smhdw]?$/ {print $1}' | paste -sd' ') "
postconf -dx | awk -v deny="$deny" -v other="^($transports)_" -v literal="$literal" '
  $2 == "=" && NF == 3 && $1 ~ /^[a-z0-9_]+$/ && $3 ~ /^[0-9]+[smhdw]?$/ && $3 !~ /^0+[smhdw]?$/ \
    && $1 !~ deny && $1 !~ other {
    unit = $3; sub(/^[0-9]+/, "", unit)
    print (index(literal, " " $1 " ") ? 1 : 2), $1, ($3 + 1) unit
  }' | sort -k1,1n -k2,2 | awk '{print $2, $3}'
SH
available=$(wc -l <"$work/params.txt")
((available >= count)) || die "only $available suitable parameters, BENCH_PARAMS=$count"
head -n "$count" "$work/params.txt" >"$work/chosen.txt"
awk 'BEGIN {printf "{\"bench_params\": {"} {printf "%s\"%s\": \"%s\"", (NR > 1 ? ", " : ""), $1, $2} END {print "}}"}' \
  "$work/chosen.txt" >"$work/params.json"
awk '{print $1 " = " $2}' "$work/chosen.txt" >"$work/expected.txt"
echo "    e.g. $(head -n 3 "$work/expected.txt" | paste -sd';' | sed 's/;/; /g') ..."

bench_inventory "$work/inventory.yml"

reset_main_cf() { in_box cp /root/main.cf.base /etc/postfix/main.cf; }

# play TAG LOG: run the playbook with TAG, print its wall-clock seconds.
play() {
  local tag=$1 log=$2 t0 t1
  t0=$(date +%s.%N)
  ansible-playbook -i "$work/inventory.yml" -e "@$work/params.json" --tags "$tag" "$playbook" >"$log" 2>&1 \
    || { tail -30 "$log" >&2; die "ansible-playbook --tags $tag failed (log above)"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
}
recap_changed() { grep -Eo 'changed=[0-9]+' "$1" | tail -1 | cut -d= -f2; }
changed_items() { grep -c '^changed: \[.*(item=' "$1" || true; }

base_lines=$(in_box cat /root/main.cf.base | wc -l)
# check_result METHOD RUN: main.cf holds the base plus exactly the chosen values.
check_result() {
  local out="$work/postconf-n.$1.$2"
  in_box postconf -n >"$out"
  grep -Fxvf "$out" "$work/expected.txt" >"$work/missing" || true
  [[ ! -s $work/missing ]] || die "$1 run $2: not set as expected: $(head -3 "$work/missing" | paste -sd' ')"
  (($(wc -l <"$out") == base_lines + count)) || die "$1 run $2: postconf -n has $(wc -l <"$out") lines, want $((base_lines + count))"
}

declare -A first rerun
for method in module loop; do first[$method]=""; rerun[$method]=""; done

echo "==> $runs runs per method, alternating (each: reset main.cf, apply, re-run)"
for ((i = 1; i <= runs; i++)); do
  for method in module loop; do
    reset_main_cf
    t1=$(play "$method" "$work/$method.$i.first.log")
    t2=$(play "$method" "$work/$method.$i.rerun.log")
    c1=$(recap_changed "$work/$method.$i.first.log")
    c2=$(recap_changed "$work/$method.$i.rerun.log")
    if [[ $method == module ]]; then
      [[ $c1 == 1 && $c2 == 0 ]] || die "module run $i: changed=$c1 then changed=$c2, want 1 then 0"
      detail="changed=$c1, re-run changed=$c2"
    else
      n1=$(changed_items "$work/$method.$i.first.log")
      n2=$(changed_items "$work/$method.$i.rerun.log")
      ((n1 == count && n2 == count)) || die "loop run $i: $n1 and $n2 commands, want $count each"
      detail="$n1 commands, re-run $n2 commands"
    fi
    check_result "$method" "$i"
    first[$method]+="$t1 "
    rerun[$method]+="$t2 "
    printf '    run %d %-6s apply %7.2f s   re-run %7.2f s   (%s)\n' "$i" "$method" "$t1" "$t2" "$detail"
  done
done

for ((i = 1; i <= runs; i++)); do
  for method in module loop; do
    cmp -s "$work/postconf-n.$method.$i" "$work/postconf-n.loop.1" \
      || die "postconf -n after $method run $i differs from loop run 1 (BENCH_KEEP=1 keeps the files)"
  done
done
echo "==> postconf -n identical after every run of both methods ($((base_lines + count)) lines: $base_lines base + $count set)"

# Postfix accepts the values: postfix check, start, one local message and one
# SMTP session, then no fatal/panic and no complaint about a parameter value.
echo "==> checking that Postfix accepts the values"
in_box bash -s >"$work/accept.log" 2>&1 <<'SH' || { cat "$work/accept.log" >&2; die "Postfix did not accept the values"; }
set -euo pipefail
postfix check
postfix start
printf 'Subject: bench\n\nbench\n' | sendmail -f root root
exec 3<>/dev/tcp/127.0.0.1/25
read -r greeting <&3
printf 'QUIT\r\n' >&3
read -r bye <&3
exec 3<&-
echo "smtpd: $greeting / $bye"
sleep 3
postfix stop
if grep -E 'fatal|panic|bad numerical|unreasonable|out of range|malformed|invalid' /var/log/postfix-bench.log; then
  exit 1
fi
echo "log clean: $(wc -l </var/log/postfix-bench.log) lines"
SH
sed 's/^/    /' "$work/accept.log"

stats() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f\n", v[1], m}'; }
read -r mod_min mod_med < <(stats "${first[module]}")
read -r loop_min loop_med < <(stats "${first[loop]}")
read -r modre_min modre_med < <(stats "${rerun[module]}")
read -r loopre_min loopre_med < <(stats "${rerun[loop]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }

cat <<REPORT

postconf benchmark: $count main.cf parameters, $runs runs per method, $version, $distro container
(wall-clock seconds of a whole ansible-playbook run over the docker connection)

$(printf '  %-40s %9s %7s   %10s %7s\n' method "apply min" median "re-run min" median)
$(printf '  %-40s %9.2f %7.2f   %10.2f %7.2f\n' "postmaster.mailserver.postconf, 1 task" "$mod_min" "$mod_med" "$modre_min" "$modre_med")
$(printf '  %-40s %9.2f %7.2f   %10.2f %7.2f\n' "command: postconf -e, $count-item loop" "$loop_min" "$loop_med" "$loopre_min" "$loopre_med")

  ratio loop/module (median): apply $(ratio "$loop_med" "$mod_med")x, re-run $(ratio "$loopre_med" "$modre_med")x
  module re-run: changed=0; loop re-run: $count commands, changed every time
REPORT
