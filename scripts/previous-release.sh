#!/usr/bin/env bash
# scripts/previous-release.sh DEST
#
# Build the previous release of the collection into
# DEST/ansible_collections/postmaster/mailserver, from the commit that
# changelogs/changelog.yaml records for it: the newest release older than the
# version in galaxy.yml, whose release summary names its commit ("commit
# <40 hex digits>"). The backup scenario converges a host with it first and
# then with the working tree, as a user upgrades the collection.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: $0 DEST}
read -r version commit < <(
  python3 - <<'PY'
import re, sys
import yaml

current = yaml.safe_load(open("galaxy.yml", encoding="utf-8"))["version"]
releases = yaml.safe_load(open("changelogs/changelog.yaml", encoding="utf-8")).get("releases") or {}
key = lambda v: tuple(int(x) for x in v.split("."))
older = sorted((v for v in releases if key(v) < key(current)), key=key)
if not older:
    sys.exit(f"changelogs/changelog.yaml records no release before {current}")
summary = releases[older[-1]].get("changes", {}).get("release_summary", "")
match = re.search(r"commit ([0-9a-f]{40})", summary)
if not match:
    sys.exit(f"the release summary of {older[-1]} names no commit (commit <40 hex digits>)")
print(older[-1], match[1])
PY
)
git cat-file -e "${commit}^{commit}" 2>/dev/null || {
  echo "previous-release.sh: commit $commit of release $version is not in this clone" >&2
  exit 2
}
target=$dest/ansible_collections/postmaster/mailserver
rm -rf "$target"
mkdir -p "$target"
git archive "$commit" | tar -x -C "$target"
echo "release $version (commit ${commit:0:12}) in $target"
