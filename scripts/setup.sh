#!/usr/bin/env bash
# make setup: idempotent preparation of a Debian machine for the test suite.
# Every step checks first and does work only when something is missing, so a
# second run is checks only.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
# The suites whose images to build: both supported ones by default; make demo
# passes only the one it uses.
SUITES=${SUITES:-trixie bookworm}
step() { printf '==> %s\n' "$*"; }
t0=$SECONDS

# 1. Debian packages.
missing=()
for pkg in docker.io debootstrap apt-cacher-ng rsync git make shellcheck; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
else
  step "Debian packages present"
fi

# 2. dockerd, and apt-cacher-ng on its bridge: the package cache every test
#    container shares (without it they download from the mirror directly).
scripts/ensure-docker.sh
scripts/ensure-apt-cache.sh || echo "==> warning: no package cache; test containers download every package themselves" >&2

# 3. The Python tool chain, pinned in requirements.txt. The stamp holds the
#    requirements' hash, so the venv is rebuilt only when they change.
req_hash=$(sha256sum requirements.txt | cut -c1-16)
if [[ -x $VENV/bin/python && "$(cat "$VENV/.requirements-hash" 2>/dev/null)" == "$req_hash" ]]; then
  step "venv $VENV is up to date"
else
  step "creating venv $VENV from requirements.txt"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r requirements.txt </dev/null
  echo "$req_hash" > "$VENV/.requirements-hash"
fi

# 4. ansible-test downloads a pip bootstrap script from a host we cannot reach.
#    Give it a stand-in: ensurepip, then pip install with this machine's own
#    pip configuration (ansible-test points PIP_CONFIG_FILE at /dev/null).
core=$("$VENV/bin/python" -c 'import ansible.release as r; print(r.__version__)')
getpip_version=$("$VENV/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
class Python:
    version = "3.11"
print(get_venv_packages(Python())["pip"].replace(".", "_"))')
getpip=$HOME/.ansible/test/cache/get_pip_${getpip_version}.py
if [[ -f $getpip ]] && cmp -s scripts/get_pip_standin.py "$getpip"; then
  step "ansible-test pip bootstrap stand-in present ($getpip, ansible-core $core)"
else
  step "installing ansible-test pip bootstrap stand-in at $getpip"
  mkdir -p "$(dirname "$getpip")"
  install -m 0644 scripts/get_pip_standin.py "$getpip"
fi

# 5. Make the working tree importable as postmaster.mailserver for molecule
#    and ad-hoc ansible-playbook runs.
link=.cache/collections/ansible_collections/postmaster/mailserver
if [[ -L $link ]]; then
  step "collection link $link present"
else
  step "creating collection link $link"
  mkdir -p "$(dirname "$link")"
  ln -sfn ../../../.. "$link"
fi

# 6. Base images, each rebuilt only when its recipe changed.
for suite in $SUITES; do
  scripts/image.sh build "$suite"
done

step "setup finished in $((SECONDS - t0)) s"
