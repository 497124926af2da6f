#!/usr/bin/env bash
# Installs what damo needs on a Debian machine, as root, into ./.venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(bpftool gnuplot-nox python3-bpfcc python3-venv tmux)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# damo's C extensions (damo/core/_adjust.c, damo/records/_ages.c,
# damo/sampler/_loop.c) are compiled at install and required: a C compiler,
# and the headers of the Python the venv is made from (Debian's python3 needs
# python3-dev; a Python built elsewhere, e.g. pyenv's, ships its own).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# A failed build has failed the install above (set -e); this checks that the
# extensions also load, in one line when one does not.
.venv/bin/python -c '
import sys
from damo.core.native import extension
from damo.errors import PlatformError
try:
    for name in ("damo.core._adjust", "damo.records._ages", "damo.sampler._loop"):
        extension(name)
except PlatformError as e:
    sys.exit(f"setup.sh: error: {e}")
'
