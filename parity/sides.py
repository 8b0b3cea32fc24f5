"""Running either side for real, as a subprocess, with this process's thread setting.

A side that fails raises with its command, exit code and stderr, so the failure text says why.
"""

import os
import subprocess
import sys
from pathlib import Path

from reference_py import threads

ROOT = Path(__file__).resolve().parents[1]


class SideFailed(AssertionError):
    pass


def port_root():
    """The Ruby port under test: ruby_port/, or a copy named by PARITY_RUBY_PORT (the fault tests use one)."""
    return Path(os.environ.get("PARITY_RUBY_PORT") or ROOT / "ruby_port")


# Rice 4.0.x, the line torch.rb 0.12 needs, keys its method registry by a hash of class address and
# method id that can collide; a process whose addresses collide aborts with std::bad_any_cast
# (fixed in rice 4.3, ruby-rice/rice#208). It depends on the process's addresses only, so a new
# process runs clean: that crash, and only it, is retried.
RICE_COLLISION = "std::bad_any_cast"
RICE_COLLISION_RETRIES = 2


def _run(side, command, env, timeout):
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    for _ in range(RICE_COLLISION_RETRIES):
        if completed.returncode == 0 or RICE_COLLISION not in completed.stderr:
            break
        print(f"parity: {side} side aborted with rice 4.0's method-registry collision ({RICE_COLLISION}); "
              f"running it again: {' '.join(command)}", file=sys.stderr)
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise SideFailed(
            f"the {side} side failed (exit {completed.returncode}): {' '.join(command)}\n"
            f"--- stderr ---\n{completed.stderr[-8000:]}\n--- stdout ---\n{completed.stdout[-2000:]}"
        )
    return completed


def run_ruby(script, *args, timeout=1800):
    """Run the port's bin/SCRIPT for real."""
    env = threads.subprocess_env()
    env["BUNDLE_GEMFILE"] = str(ROOT / "Gemfile")
    return _run("Ruby", ["ruby", str(port_root() / "bin" / script), *map(str, args)], env, timeout)


def run_python(script, *args, timeout=1800):
    """Run reference_py/SCRIPT for real, with this interpreter."""
    return _run("Python", [sys.executable, str(ROOT / "reference_py" / script), *map(str, args)],
                threads.subprocess_env(), timeout)
