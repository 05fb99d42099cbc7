#!/usr/bin/env bash
# A plugin's own tests, run as its author would: in a fresh virtual environment in a temporary
# directory outside the repository, with krsync installed from this checkout as a built wheel
# (not editable) and the plugin beside it; nothing of the checkout is on the path.
#   examples/check-plugin.sh [plugin dir]    (default: examples/krsync-webinars)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
plugin="$(cd "${1:-$repo/examples/krsync-webinars}" && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

# The checkout's files (tracked or new, not ignored), so a build leaves nothing in it.
mkdir "$work/krsync"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$work/krsync"

"$python" -m venv "$work/venv"
# pip's wheel cache (or the local wheel index) keeps this a matter of seconds, not downloads.
"$work/venv/bin/pip" install --quiet "$work/krsync[testing]" "$plugin"

cp -r "$plugin/tests" "$work/tests"
cd "$work"
env -u PYTHONPATH "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" \
    --import-mode=importlib -o pythonpath=tests tests
echo "example plugin: tests passed outside the repository in $(($(date +%s) - started)) s"
