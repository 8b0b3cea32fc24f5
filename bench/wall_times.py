"""Wall time of the long runs: the whole parity suite, and training on the embedded defaults in each language.

    python bench/wall_times.py [--only pytest_parity,train_python,train_ruby] [--epochs N]

Runs each command as the README gives it, from the repository root, with the virtual environment's bin/
first on PATH (as after `. .venv/bin/activate`) and one HYMENOPTERA_THREADS for all. --epochs N (a smoke
test, not the embedded defaults) passes `--epochs N` to train.py and EPOCHS=N to rake. Prints one JSON object.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for reference_py

from reference_py import ROOT, python_interpreter, threads  # noqa: E402

PYTHON = python_interpreter()
COMMANDS = {  # name: (as the README writes it, what runs)
    "pytest_parity": ("pytest parity -q", [PYTHON, "-m", "pytest", "parity", "-q"]),
    "train_python": ("python reference_py/train.py", [PYTHON, "reference_py/train.py"]),
    "train_ruby": ("rake train", ["rake", "train"]),  # plain rake, as the README and the Rakefile say
}
TIMEOUT_S = 1800


def environment(epochs=None):
    env = threads.subprocess_env()
    if epochs is not None:
        env["EPOCHS"] = str(epochs)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(ROOT / ".venv")
    env["BUNDLE_GEMFILE"] = str(ROOT / "Gemfile")
    return env


def missing(name):
    """Why `name` cannot run yet, or None."""
    if name == "pytest_parity" and not (ROOT / "parity").is_dir():
        return "parity/ not there yet"
    if name == "train_python" and not (ROOT / "reference_py" / "train.py").exists():
        return "reference_py/train.py not there yet"
    if name == "train_ruby" and not (ROOT / "Rakefile").exists():
        return "no Rakefile (rake train) yet"
    return None


def time_command(name, epochs=None):
    shown, command = COMMANDS[name]
    if epochs is not None and name == "train_python":
        shown, command = f"{shown} --epochs {epochs}", command + ["--epochs", str(epochs)]
    elif epochs is not None and name == "train_ruby":
        shown = f"EPOCHS={epochs} {shown}"
    result = {"command": shown}
    if name == "pytest_parity":
        result["fixtures_existed"] = (ROOT / "fixtures" / "manifest.json").exists()
    reason = missing(name)
    if reason:
        return {**result, "ok": False, "note": reason}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=environment(epochs), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {**result, "ok": False, "seconds": time.perf_counter() - start, "note": f"timed out after {TIMEOUT_S} s"}
    seconds = time.perf_counter() - start
    output = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", done.stdout + done.stderr)  # progress bars' escapes
    tail = output.strip().splitlines()[-1:] or [""]
    return {**result, "ok": done.returncode == 0, "seconds": seconds, "exit_code": done.returncode, "last_line": tail[0]}


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(COMMANDS), help="comma-separated subset of " + ", ".join(COMMANDS))
    parser.add_argument("--epochs", type=int, help="train for N epochs instead of the default (a smoke test)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    json.dump({name: time_command(name, args.epochs) for name in args.only.split(",")}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
