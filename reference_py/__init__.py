"""The Python reference of PyTorch's "Transfer Learning for Computer Vision" tutorial."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: generated data lives under ROOT / "data"."""
STANDIN_DIR = ROOT / "data" / "hymenoptera_standin"
"""The generated stand-in's data dir (reference_py/standin_data.py), the data dir when none is given."""


def python_interpreter():
    """The interpreter that has torch, for a child process: bin/setup's .venv, else this one (the Ruby
    side's twin is Hymenoptera::PythonReference.interpreter)."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv if venv.exists() else Path(sys.executable))
