"""Runs that start as soon as the tests are collected, in the background.

A test module registers, for one of its fixtures, the function that starts that fixture's runs
(`@starts_early("free_runs")`); when the collected tests use the fixture, conftest calls it before the
first test, and the runs go at a lower priority (parity/sides.py), filling the cores while the tests
before them wait for other runs or compare. The fixture then takes what was started (`started(...)`),
or starts it then, in the foreground, when it was not. A run no collected test uses never starts, and
one still running when the session ends early is stopped.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

STARTERS = {}  # fixture name -> start(session, background): what the fixture waits for (it has stop())
STARTED = {}


def starts_early(fixture_name):
    def register(start):
        STARTERS[fixture_name] = start
        return start
    return register


def start_used(session):
    """Start, in the background, the runs of every registered fixture that a collected test uses."""
    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    for name, start in STARTERS.items():
        if name in used:
            STARTED[name] = start(session, background=True)


def stop_unread():
    """Stop the runs no fixture took (the session ended first: -x, a failure, Ctrl-C)."""
    while STARTED:
        _, runs = STARTED.popitem()
        runs.stop()


def started(fixture_name, session):
    """What the fixture's start function returned: at collection, or now."""
    if fixture_name in STARTED:
        return STARTED.pop(fixture_name)
    return STARTERS[fixture_name](session, background=False)


@dataclass
class RunsInFolder:
    """What a start function returns for runs that write into a temporary folder of their own (a test module
    adds what the runs were given): stop() ends them and removes the folder."""
    folder: Path
    running: object  # parity.sides.Running

    def stop(self):
        self.running.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
