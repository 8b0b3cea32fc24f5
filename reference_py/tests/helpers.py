"""Helpers the tests share."""

import subprocess
import sys

from reference_py import ROOT, threads


def run_cli(script, *args, cwd=ROOT, env=None):
    """Run reference_py/SCRIPT as a script with this interpreter; returns the CompletedProcess."""
    command = [sys.executable, str(ROOT / "reference_py" / script), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=threads.subprocess_env(env), capture_output=True, text=True,
                          timeout=600)


def torch_imported_by(*modules):
    """Which of torch and torchvision importing `modules` imports, in a fresh interpreter (what an entry point checks
    before LibTorch loads must not load it)."""
    code = (f"import sys\nfor name in {modules!r}:\n    __import__(name)\n"
            f"print(' '.join(m for m in ('torch', 'torchvision') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                               timeout=120)
    return completed.stdout.split()


def tree_bytes(folder):
    """Relative path -> content of every file below `folder`."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
