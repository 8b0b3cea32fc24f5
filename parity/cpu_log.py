"""Opt-in accounting of the CPU the suite spends (PARITY_CPU_LOG=FILE): one JSON line per child process
reaped (its command, user+sys CPU from wait4, which includes what it reaped itself, and wall time), and
one per test (this process's own CPU and its children's, setup and teardown included). A child pytest
(the fault-injection suites) inherits the variable and logs with depth + 1. A command run by a fork server
(parity/fork_server.py) is logged when it ends, as if this process had reaped it ("forked": true); the
server's own line, when it is reaped, includes the CPU of every command it ran."""

import json
import os
import resource
import subprocess
import time

import pytest

LOG = os.environ.get("PARITY_CPU_LOG")
DEPTH = int(os.environ.get("PARITY_CPU_DEPTH", "0"))
_STARTED = {}  # pid -> (argv, monotonic start, test)
_CURRENT = ["(collection)"]


def _write(record):
    with open(LOG, "a") as log:
        log.write(json.dumps({"depth": DEPTH, "ppid": os.getpid(), **record}) + "\n")


def _reaped(pid, status, usage):
    if pid and pid in _STARTED:
        argv, start, test = _STARTED.pop(pid)
        _write({"kind": "process", "argv": argv, "cpu": usage.ru_utime + usage.ru_stime, "user": usage.ru_utime,
                "wall": time.monotonic() - start, "test": test, "reaped_in": _CURRENT[0]})
    return pid, status


def current_test():
    return _CURRENT[0]


def forked(argv, end, test):
    """A fork server's command that ended (its end message: CPU, user CPU, wall), started during `test`."""
    if LOG:
        _write({"kind": "process", "argv": [str(a) for a in argv], "cpu": end["cpu"], "user": end["user"],
                "wall": end["wall"], "test": test, "reaped_in": _CURRENT[0], "forked": True})


def _waitpid(pid, options):
    pid_, status, usage = os.wait4(pid, options)
    return _reaped(pid_, status, usage)


def install():
    if not LOG:
        return
    os.environ["PARITY_CPU_DEPTH"] = str(DEPTH + 1)
    original_init = subprocess.Popen.__init__

    def init(self, args, *rest, **kwargs):
        original_init(self, args, *rest, **kwargs)
        argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
        _STARTED[self.pid] = (argv, time.monotonic(), _CURRENT[0])

    subprocess.Popen.__init__ = init
    os.waitpid = _waitpid
    poll = subprocess.Popen._internal_poll
    names = poll.__code__.co_varnames[:poll.__code__.co_argcount]
    defaults = list(poll.__defaults__)
    defaults[names[-len(defaults):].index("_waitpid")] = _waitpid
    poll.__defaults__ = tuple(defaults)


class Plugin:
    def __init__(self):
        self.t0 = self._usage()

    @staticmethod
    def _usage():
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, time.monotonic())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        _CURRENT[0] = item.nodeid
        before = self._usage()
        yield
        after = self._usage()
        _write({"kind": "test", "test": item.nodeid, "own": after[0] - before[0], "children": after[1] - before[1],
                "wall": after[2] - before[2]})
        _CURRENT[0] = "(between tests)"

    @pytest.hookimpl(trylast=True)  # after conftest's, which ends the session's fork servers (parity/sides.py): their
    # CPU, with the runs they forked, counts once they are reaped
    def pytest_sessionfinish(self, session):
        after = self._usage()
        _write({"kind": "session", "own": after[0] - self.t0[0], "children": after[1] - self.t0[1],
                "wall": after[2] - self.t0[2], "args": session.config.invocation_params.args})
