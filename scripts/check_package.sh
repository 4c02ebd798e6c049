#!/usr/bin/env bash
# CI's packaging check (`make package`): build the sdist and the wheel, check their metadata with twine, install
# the wheel with its core dependencies only into a fresh venv (torch==2.13.0: the CPU build on this machine's
# disk), and run the smoke test (tests/packaging/smoke.py) there, from a folder outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="${PYTHON:-$root/.venv/bin/python}"  # has build and twine (the dev extra)
# the throwaway venv (1.3 GB in 25 000 files, torch's) goes to memory when there is room: on the shared disk of
# this VM, deleting it took up to 90 s
base="${TMPDIR:-/tmp}"
if [ -d /dev/shm ] && [ "$(df -Pm /dev/shm | awk 'NR == 2 {print $4}')" -gt 4096 ]; then base=/dev/shm; fi
work=$(mktemp -d "$base/proactiv-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS

step() {  # step NAME COMMAND...: run quietly, print its output only when it fails
  local t0=$SECONDS
  if ! "${@:2}" > "$work/$1.log" 2>&1; then
    echo "[package] $1 failed:" >&2
    grep -v "is ignored: it is neither" "$work/$1.log" >&2
    exit 1
  fi
  echo "[package] $1: $((SECONDS - t0)) s"
}

step build "$py" -m build --outdir "$work/dist" "$root"
step twine "$py" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/proactiv-*.whl)
sdist=$(ls "$work"/dist/proactiv-*.tar.gz)
echo "[package] built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) kB), $(basename "$sdist") ($(du -k "$sdist" | cut -f1) kB)"
step venv python3 -m venv "$work/venv"
# no .pyc files compiled ahead: a third less to write (and delete) for a smoke test that imports a few modules
step install "$work/venv/bin/pip" install --no-compile "$wheel" torch==2.13.0
echo "[package] core environment: $(du -sm "$work/venv" | cut -f1) MB," \
  "$("$work/venv/bin/pip" list --format=freeze 2>/dev/null | wc -l) distributions"
mkdir "$work/outside"
(cd "$work/outside" && OMP_NUM_THREADS=1 "$work/venv/bin/python" "$root/tests/packaging/smoke.py" "$work/outside")
t0=$SECONDS
rm -rf "$work"
echo "[package] cleanup: $((SECONDS - t0)) s; done in $((SECONDS - started)) s"
