"""parity/sides.py's Running, as the zoo uses it: a side that failed is told (its command, exit code and
stderr) while the other still runs, and stop() ends the one still running; and a fork server's `python -c`."""

import os
import subprocess
import sys

import pytest

from parity.fork_server import ForkServer
from parity.sides import ROOT, Command, SideFailed, start_together


def test_a_failed_side_is_told_while_the_other_runs_and_stop_ends_it():
    failing = Command("Python", [sys.executable, "-c", "import sys; sys.stderr.write('no weights here'); sys.exit(3)"])
    sleeping = Command("Ruby", [sys.executable, "-c", "import time; time.sleep(60)"])
    running = start_together(failing, sleeping)
    try:
        running.processes[0].wait(timeout=60)
        with pytest.raises(SideFailed) as failure:
            running.check()
        assert str(failure.value).startswith("the Python side failed (exit 3): ")
        assert "--- stderr ---\nno weights here" in str(failure.value)
        assert running.processes[1].poll() is None
    finally:
        running.stop()
    assert running.processes[1].poll() is not None


def test_check_says_nothing_while_every_side_runs_or_succeeded():
    running = start_together(Command("Python", [sys.executable, "-c", "pass"]))
    running.processes[0].wait(timeout=60)
    running.check()
    assert running.wait() == [""]


def test_a_fork_server_runs_python_c_as_the_interpreter_does(tmp_path):
    """`python -c CODE ARGS` forked by parity/fork_server.py: the same sys.argv, sys.path[0], __name__ and a __main__ of
    its own (not the server's), and an exception's exit code, as the interpreter's."""
    code = ("import json, sys; print(json.dumps([sys.argv, sys.path[0], __name__, sorted(n for n in globals() "
            "if not n.startswith('__'))])); sys.exit(int(sys.argv[1]))")
    argv = ["-c", code, "3", "four"]
    python = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    failing = ["-c", "raise ValueError('no weights here')"]
    with ForkServer.python([], dict(os.environ), ROOT) as server:
        jobs = [server.start(args, dict(os.environ), tmp_path / f"out{k}", cwd=tmp_path)
                for k, args in enumerate((argv, failing))]
        codes = [job.wait(timeout=60) for job in jobs]
    assert (codes[0], (tmp_path / "out0").read_text()) == (python.returncode, python.stdout) == (3, python.stdout)
    assert codes[1] == 1 and "ValueError: no weights here" in (tmp_path / "out1").read_text()
