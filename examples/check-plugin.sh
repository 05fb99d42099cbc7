#!/usr/bin/env bash
# A plugin's own tests, run as its author would: in a fresh virtual environment in a temporary
# directory outside the repository, with krsync installed from this checkout as a built wheel
# (not editable) and the plugin beside it; nothing of the checkout is on the path.
#   examples/check-plugin.sh [plugin dir]    (default: examples/krsync-webinars)
# Needs python3 (3.11+) with pip >= 22.3 (`pip --python`).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
plugin="$(cd "${1:-$repo/examples/krsync-webinars}" && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

# Copies of the checkout's files (tracked or new, not ignored) and of the plugin: a build
# writes beside its sources, and leaves nothing in the checkout this way.
copy() { mkdir "$2" && git -C "$1" ls-files -z --cached --others --exclude-standard . \
    | (cd "$1" && tar --null -T - -cf -) | tar -xf - -C "$2"; }
copy "$repo" "$work/krsync"
copy "$plugin" "$work/plugin"

# Kept outside the checkout between runs, so a run costs unpacking wheels, not resolving an
# index or setting up a build environment per package: a pip with setuptools to build with,
# and a wheelhouse of the dependencies, filled from the index only when one is missing (a
# first run, a changed dependency). krsync and the plugin themselves are built afresh.
cache="${KRSYNC_PLUGIN_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krsync/plugin-check}"
if [ ! -x "$cache/tools/bin/pip" ]; then
    "$python" -m venv "$cache/tools"
    "$cache/tools/bin/pip" install --quiet --quiet "setuptools>=69" wheel
fi
pip=("$cache/tools/bin/pip" --quiet --quiet)
"${pip[@]}" wheel --no-deps --no-build-isolation -w "$work/dist" "$work/krsync" "$work/plugin"
want=("$(ls "$work"/dist/krsync-[0-9]*.whl)[testing]")
for wheel in "$work"/dist/*.whl; do
    case "$wheel" in */krsync-[0-9]*) ;; *) want+=("$wheel") ;; esac
done

"$python" -m venv --without-pip "$work/venv"
into=("${pip[@]}" --python "$work/venv/bin/python" install --no-index -f "$cache/wheels")
if ! "${into[@]}" "${want[@]}" 2>/dev/null; then
    "${pip[@]}" wheel -w "$cache/wheels" -f "$work/dist" "${want[@]}"
    rm -f "$cache"/wheels/krsync*  # built afresh each run: the cache holds dependencies only
    "${into[@]}" "${want[@]}"
fi

cp -r "$plugin/tests" "$work/tests"
cd "$work"
env -u PYTHONPATH "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" \
    --import-mode=importlib -o pythonpath=tests tests
echo "example plugin: tests passed outside the repository in $(($(date +%s) - started)) s"
