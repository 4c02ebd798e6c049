#!/usr/bin/env bash
# Create .venv and install proactiv with what it needs (Python packages; Debian packages when root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: text-to-speech engines for the keyword-spotting corpus, Chromium for browser tests.
DEB_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts chromium chromium-driver"
missing=""
for pkg in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[bootstrap] installing Debian packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "[bootstrap] missing Debian packages:$missing" >&2
    echo "[bootstrap] install them with: sudo apt-get install$missing" >&2
    echo "[bootstrap] (continuing: the corpus synthesis and browser tests need them and will say so)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv"
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "[bootstrap] installing Python packages (torch==2.13.0 CPU build and friends)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.installed
fi
