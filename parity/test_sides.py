"""parity/sides.py's Running, as the zoo uses it: a side that failed is told (its command, exit code and
stderr) while the other still runs, and stop() ends the one still running."""

import sys

import pytest

from parity.sides import Command, SideFailed, start_together


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
