"""Running the Ruby side for real, as a subprocess, with this process's thread setting."""

import os
import subprocess
from pathlib import Path

from reference_py import threads

ROOT = Path(__file__).resolve().parents[1]


class RubyFailed(AssertionError):
    pass


def ruby_env():
    env = threads.subprocess_env()
    env["BUNDLE_GEMFILE"] = str(ROOT / "Gemfile")
    return env


def port_root():
    """The Ruby port under test: ruby_port/, or a copy named by PARITY_RUBY_PORT (the fault tests use one)."""
    return Path(os.environ.get("PARITY_RUBY_PORT") or ROOT / "ruby_port")


def run_ruby(script, *args, timeout=1800, cwd=ROOT):
    """Run the port's bin/SCRIPT for real; its stderr goes into the failure."""
    port = port_root()
    command = ["ruby", str(port / "bin" / script), *map(str, args)]
    completed = subprocess.run(command, cwd=cwd, env=ruby_env(), capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RubyFailed(
            f"the Ruby side failed (exit {completed.returncode}): {' '.join(command)}\n"
            f"--- stderr ---\n{completed.stderr[-8000:]}\n--- stdout ---\n{completed.stdout[-2000:]}"
        )
    return completed
