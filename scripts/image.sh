#!/usr/bin/env bash
# Build (or reuse) a systemd Debian image for the molecule scenarios.
#
#   scripts/image.sh tag   SUITE   print the image tag for SUITE
#   scripts/image.sh build SUITE   build the image unless that tag exists
#
# The tag carries a hash of this recipe, so an image is rebuilt only when the
# recipe (this file) changes. Images are built with debootstrap and
# `docker import`; nothing is ever pulled from a registry.
#
# apt in the images uses the test host's package cache when there is one:
# /etc/apt/apt.conf.d/01postmaster-proxy asks /usr/local/lib/postmaster/apt-proxy,
# which answers http://apt-cache:3142 when the name apt-cache resolves and that
# port answers within a second, and DIRECT otherwise. Molecule and the demo
# map apt-cache to docker's host-gateway, where scripts/ensure-apt-cache.sh
# runs apt-cacher-ng. The packages are still installed by the roles in every
# scenario; only their download is shared.
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3-apt is on every Debian cloud image and Ansible needs it for apt in check mode.
PACKAGES=systemd,systemd-sysv,python3,python3-apt,sudo,ca-certificates,iproute2
REPO=postmaster-mailserver/debian

die() { echo "image.sh: $*" >&2; exit 2; }

recipe_hash() {
  # The recipe is this script plus the mirror it builds from.
  { cat "${BASH_SOURCE[0]}"; echo "$MIRROR"; } | sha256sum | cut -c1-12
}

tag_for() {
  case "$1" in
    trixie|bookworm) ;;
    *) die "unknown suite '$1' (supported: trixie, bookworm)" ;;
  esac
  echo "${REPO}:$1-$(recipe_hash)"
}

build() {
  local suite=$1 tag
  tag=$(tag_for "$suite")
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "image $tag is up to date"
    return 0
  fi
  root=$(mktemp -d "/var/tmp/postmaster-${suite}.XXXXXX")
  trap 'rm -rf "${root:-}" "${root:-}.log"' EXIT
  echo "building $tag with debootstrap (this takes about a minute)"
  local start=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$root" "$MIRROR" \
    > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "debootstrap $suite failed (last log lines above)"; }
  # Containers must not start getty or try to reach out at boot.
  rm -f "$root"/etc/systemd/system/getty.target.wants/* || true
  echo "postmaster-${suite}" > "$root/etc/hostname"
  install -d "$root/usr/local/lib/postmaster"
  cat > "$root/usr/local/lib/postmaster/apt-proxy" <<'PROXY'
#!/bin/bash
# apt's Acquire::http::Proxy-Auto-Detect: the test host's apt-cacher-ng when
# the name apt-cache resolves and its port answers within 1 s, else DIRECT.
if getent hosts apt-cache >/dev/null 2>&1 &&
  timeout 1 bash -c 'exec 3<>/dev/tcp/apt-cache/3142' 2>/dev/null; then
  echo http://apt-cache:3142
else
  echo DIRECT
fi
PROXY
  chmod 0755 "$root/usr/local/lib/postmaster/apt-proxy"
  echo 'Acquire::http::Proxy-Auto-Detect "/usr/local/lib/postmaster/apt-proxy";' \
    > "$root/etc/apt/apt.conf.d/01postmaster-proxy"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' \
    -m "postmaster.mailserver test image, debootstrap $suite" - "$tag" >/dev/null
  echo "built $tag in $((SECONDS - start)) s"
  # Drop images of this suite built from an older recipe.
  docker images --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep ":${suite}-" | grep -vx "$tag" \
    | xargs -r docker rmi >/dev/null 2>&1 || true
}

case "${1:-}" in
  tag) tag_for "${2:?suite}" ;;
  build) build "${2:?suite}" ;;
  *) die "usage: $0 tag|build SUITE" ;;
esac
