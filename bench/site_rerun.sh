#!/usr/bin/env bash
# Benchmark (issue 15): the whole mail server, every role of playbooks/site.yml
# with its defaults and the few users of bench/site_vars.yml, over the docker
# connection, on a fresh container of the locally built image:
#
#   bare      apt-get install of the same packages on another fresh container
#             (the floor a first converge cannot beat);
#   first     the first converge of site.yml;
#   rerun1    the first re-run after the converge (must be changed=0): the
#             calls whose call record a later role made stale (the postfix
#             role's first postfix_config call, after the other roles added
#             their fragments) run on the host and record again;
#   rerun     a re-run as site.yml ships (pipelining on; must be changed=0;
#             budget 10 s);
#   nopipe    a re-run with postmaster_pipelining=false, as with a user's
#             ansible.cfg of defaults before site.yml turned pipelining on
#             (must be changed=0; budget 15 s, issue 21: 8 s);
#   check     a check-mode run on the converged host (must be changed=0).
#
# Times are the wall clock of the whole command. Both containers use the same
# apt proxy as the tests when it answers (make setup starts it), so the
# download cost is the same for bare and first.
#
#   MOLECULE_DISTRO=trixie   image suite (trixie or bookworm)
#   BENCH_KEEP=1             keep the container and the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_NOCOLOR=1
# shellcheck source=bench/lib.sh
. bench/lib.sh

distro=${MOLECULE_DISTRO:-trixie}
name=pm-bench-site
die() { echo "site_rerun.sh: $*" >&2; exit 1; }
command -v ansible-playbook >/dev/null || die "no ansible-playbook in .venv; run make setup"
image=$(bench_image "$distro")
work=$(mktemp -d "/tmp/$name.XXXXXX")

# The packages site.yml installs with its defaults (postfix, dovecot with
# imap, pop3 and lmtp, amavisd-new with ClamAV, SpamAssassin and the
# decoders, the SPF policy service, OpenDKIM, postsrsd, nftables and fail2ban
# with its journal reader; the certificate role needs only openssl, which
# postfix and dovecot-core pull in).
packages=(postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd
  postfix-policyd-spf-python nftables opendkim opendkim-tools procps postsrsd fail2ban python3-systemd
  amavisd-new spamassassin clamav-daemon arj binutils bzip2 cabextract cpio lhasa lrzip lz4 lzop nomarch
  p7zip-full pax rpm2cpio unrar-free unzip xz-utils zstd)

seconds() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
recap_changed() { grep -Eo ' changed=[0-9]+' "$1" | tail -1 | cut -d= -f2; }

# bare: the packages' own maintainer scripts start their services (freshclam
# then tries its mirror, amavis and clamd start before any configuration).
# held: the same with those starts forbidden (policy-rc.d exit 101), which is
# what the roles do where it matters; the floor the first converge is held to.
# (Not in a $(...) subshell: bench_start's clean-up trap would fire there.)
bare_install() {
  local label=$1 hold=$2 t0
  echo "==> $label: apt-get install ${packages[*]} on a fresh $distro container"
  bench_start "$name-bare" "$image" "$work"
  [[ $hold == 1 ]] && in_box sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  t0=$(date +%s.%N)
  in_box sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages[*]}" \
    >"$work/$label.log" 2>&1 || { tail -20 "$work/$label.log" >&2; die "apt-get install failed"; }
  installed=$(seconds "$t0" "$(date +%s.%N)")
  docker rm -f "$name-bare" >/dev/null
}
bare_install bare 0
bare=$installed
bare_install held 1
held=$installed

bench_start "$name" "$image" "$work"
bench_inventory "$work/inventory.yml"
sed -i 's/^    bench:/    mail:/' "$work/inventory.yml"

# run LABEL [ARGS...]: site.yml with the bench variables; print its seconds.
run() {
  local label=$1 t0
  shift
  t0=$(date +%s.%N)
  ansible-playbook -i "$work/inventory.yml" -e @bench/site_vars.yml "$@" playbooks/site.yml >"$work/$label.log" 2>&1 \
    || { tail -30 "$work/$label.log" >&2; die "$label run failed ($work/$label.log)"; }
  seconds "$t0" "$(date +%s.%N)"
}

echo "==> first converge of playbooks/site.yml"
first=$(run first)
echo "==> first re-run (pipelining on, as site.yml ships)"
rerun1=$(run rerun1)
echo "==> re-run (pipelining on, as site.yml ships)"
rerun=$(run rerun)
echo "==> re-run without pipelining (postmaster_pipelining=false)"
nopipe=$(run nopipe -e postmaster_pipelining=false)
echo "==> check mode on the converged host"
check=$(run check --check --diff)

for label in rerun1 rerun nopipe check; do
  [[ $(recap_changed "$work/$label.log") == 0 ]] || die "$label reported changes ($work/$label.log)"
done
tasks=$(grep -c '^TASK \[' "$work/rerun.log")

printf '\nFull server (%s, %s), playbooks/site.yml over the docker connection:\n' "$distro" "$image"
printf '  %-36s %7s s\n' "bare apt-get install" "$bare"
printf '  %-36s %7s s\n' "the same, services held" "$held"
printf '  %-36s %7s s   %s x held, %s x bare (budget 1.5)\n' "first converge" "$first" \
  "$(awk -v a="$first" -v b="$held" 'BEGIN {printf "%.2f", a / b}')" "$(awk -v a="$first" -v b="$bare" 'BEGIN {printf "%.2f", a / b}')"
printf '  %-36s %7s s   changed=0 (the calls whose record a later role made stale run)\n' \
  "first re-run after the converge" "$rerun1"
printf '  %-36s %7s s   budget 10 s, changed=0, %s tasks\n' "re-run (pipelining, as shipped)" "$rerun" "$tasks"
printf '  %-36s %7s s   budget 15 s (issue 21: 8 s), changed=0\n' "re-run without pipelining" "$nopipe"
printf '  %-36s %7s s   changed=0\n' "check mode on the converged host" "$check"
