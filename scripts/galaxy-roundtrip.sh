#!/usr/bin/env bash
# make galaxy: build the collection tarball, import-check it with
# galaxy-importer, install it into a temporary collections path, and run a
# playbook from outside the repository that uses the collection by FQCN.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"

tmp=$(mktemp -d /var/tmp/postmaster-galaxy.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "==> ansible-galaxy collection build"
ansible-galaxy collection build --force --output-path "$tmp/dist" . >/dev/null
tarball=$(ls "$tmp"/dist/postmaster-mailserver-*.tar.gz)
echo "    $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files, $(du -h "$tarball" | cut -f1)"
if tar -tzf "$tarball" | grep -E '(^|/)(\.venv|molecule|tests/output|\.git)/|(^|/)importer_result\.json$' ; then
  echo "tarball contains files that build_ignore should exclude" >&2
  exit 1
fi

echo "==> galaxy-importer"
cat > "$tmp/importer.cfg" <<CFG
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
CHECK_REQUIRED_TAGS = False
CFG
# galaxy-importer writes importer_result.json into its working directory:
# run it in the temporary directory, never in the repository.
(cd "$tmp" && GALAXY_IMPORTER_CONFIG="$tmp/importer.cfg" python -m galaxy_importer.main "$tarball") >"$tmp/importer.log" 2>&1 || {
  cat "$tmp/importer.log" >&2
  echo "galaxy-importer failed" >&2
  exit 1
}
if grep -E '^(ERROR|WARNING)' "$tmp/importer.log"; then
  echo "galaxy-importer reported the problems above" >&2
  exit 1
fi
echo "    galaxy-importer: $(grep -c . "$tmp/importer.log") log lines, no warnings or errors"

echo "==> ansible-galaxy collection install (offline, from the tarball)"
# The one dependency (community.general) ships with the ansible package;
# --offline resolves it from what is installed.
ansible-galaxy collection install --offline -p "$tmp/collections" "$tarball" >/dev/null

echo "==> playbook outside the repository, using the collection by FQCN"
mkdir -p "$tmp/outside"
cp tests/galaxy/roundtrip.yml "$tmp/outside/"
cd "$tmp/outside"
ANSIBLE_COLLECTIONS_PATH="$tmp/collections" ANSIBLE_NOCOLOR=1 \
  ansible-playbook -i localhost, -c local -e ansible_python_interpreter="$(command -v python)" roundtrip.yml
ANSIBLE_COLLECTIONS_PATH="$tmp/collections" ansible-doc -l postmaster.mailserver | sed 's/^/    /'
