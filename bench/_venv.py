"""Run a benchmark under the project's virtual environment (numpy, damo, typer).

Each script imports this first: it re-executes the script with `.venv/bin/python`
when started by another interpreter (`./bench/x` finds the system python3), and
puts the repository on sys.path.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and VENV_PYTHON.exists():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), sys.argv[0], *sys.argv[1:]])
sys.path.insert(0, str(ROOT))
