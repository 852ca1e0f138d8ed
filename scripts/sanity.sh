#!/usr/bin/env bash
# make sanity: ansible-test sanity, locally, with no ignore files.
# ansible-test needs the collection under ansible_collections/NS/NAME, so the
# tracked (and new, not ignored) files are copied into a temporary tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"

if compgen -G "tests/sanity/ignore-*.txt" >/dev/null; then
  echo "sanity ignore files are not allowed: $(ls tests/sanity/ignore-*.txt)" >&2
  exit 1
fi

tmp=$(mktemp -d /var/tmp/postmaster-sanity.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/ansible_collections/postmaster/mailserver
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
git init -q && git add -A
ansible-test sanity --local --python 3.11 --color no "$@"
