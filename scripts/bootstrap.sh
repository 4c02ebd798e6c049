#!/usr/bin/env bash
# Create .venv and install what `make demo` (mode "demo") or `make test` (mode "test") needs: Python packages,
# and Debian packages when root. The Debian and the Python packages install at the same time; each is
# installed once (the test mode adds only what the demo mode lacks).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-test}"

# Debian packages: text-to-speech engines for the keyword-spotting corpus and festlex-cmu, the CMU lexicon its
# vocabulary reads (demo and tests); Chromium only for the browser tests.
DEB_PACKAGES="espeak-ng flite festival festlex-cmu festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
# the demo's extras: the corpus vocabulary, attributions and surrogates, t-SNE, the dashboard (not Ray nor ONNX)
PIP_TARGET=".[kws,explain,embed,dashboard]"
case "$MODE" in
  demo) ;;
  test) DEB_PACKAGES="$DEB_PACKAGES chromium chromium-driver"; PIP_TARGET=".[all,dev]" ;;
  *) echo "[bootstrap] unknown mode '$MODE': expected demo or test" >&2; exit 2 ;;
esac

missing=""
for pkg in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
apt_pid=""
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[bootstrap] installing Debian packages (in the background):$missing"
    ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null ) \
      > .bootstrap-apt.log 2>&1 &
    apt_pid=$!
  else
    echo "[bootstrap] missing Debian packages:$missing" >&2
    echo "[bootstrap] install them with: sudo apt-get install$missing" >&2
    echo "[bootstrap] (continuing: the corpus synthesis and browser tests need them and will say so)" >&2
  fi
fi

# one marker per mode: a change of pyproject.toml installs again; "test" after "demo" adds only the extras
marker=".venv/.installed-$MODE"
if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ]; then
  # pip's own "No space left on device" comes late and names no folder: say it first, naming the disk
  need_mb=4096  # the test install takes ~3 GB in .venv (torch and the dev tools), plus pip's build files
  for dir in . "${TMPDIR:-/tmp}"; do
    free_mb=$(df -Pm "$dir" | awk 'NR == 2 {print $4}')
    if [ -n "$free_mb" ] && [ "$free_mb" -lt "$need_mb" ]; then
      echo "[bootstrap] only $free_mb MB free on the disk of $(cd "$dir" && pwd): the Python packages" \
        "need about $need_mb MB there; free some space and run again" >&2
      exit 1
    fi
  done
  if [ ! -x .venv/bin/python ]; then
    echo "[bootstrap] creating .venv"
    python3 -m venv .venv
  fi
  echo "[bootstrap] installing Python packages for '$MODE' (torch==2.13.0 CPU build and friends)"
  .venv/bin/pip install -q --upgrade pip
  # torch pinned here, not in the package (which takes torch >= 2.5): the CPU build this machine has on disk
  .venv/bin/pip install -q -e "$PIP_TARGET" torch==2.13.0
  touch "$marker"
  [ "$MODE" = test ] && touch .venv/.installed-demo  # the test install holds everything the demo needs
fi

if [ -n "$apt_pid" ]; then
  if ! wait "$apt_pid"; then
    echo "[bootstrap] the Debian packages did not install; apt-get said:" >&2
    cat .bootstrap-apt.log >&2
    rm -f .bootstrap-apt.log
    exit 1
  fi
  rm -f .bootstrap-apt.log
  echo "[bootstrap] Debian packages installed"
fi
