"""A fork server: one process that loads LibTorch once (and what else it is told to), then forks a child for
each command it is given, which runs as the interpreter would have run it from the start. A child session
of the suite (`python -m pytest ...`, the fault-injection tests) or a recorded Ruby port (`ruby -rLIB
PORT.rb`, the diagnosis' leave-one-out) then pays no LibTorch start, which a test that starts ten or twenty
of them paid again and again: a session of test_diagnose_walk.py 2.45 -> 0.95 CPU-s, a Ruby port's start
and end (the bundle, LibTorch, torchvision) 1.5 -> 0.14.

    python -m parity.fork_server MODULE...            imports the MODULEs (torch, pytest...), then serves
    bundle exec ruby parity/fork_server.rb LIB...     requires the LIBs (torch), then serves (its twin)

Each serves `python -m MODULE ARGS` (Python) or `ruby [-rLIB...] SCRIPT ARGS` (Ruby), one a line on stdin
as JSON: {"argv": [what follows the interpreter], "env": {NAME: VALUE}, "cwd": ..., "output": FILE,
"niceness": N}. The child sets those variables, takes that folder, sends its stdout and stderr to FILE,
lowers its priority by N, and runs the command; the server answers {"started": PID} at once and, when the child has ended,
{"pid": PID, "status": EXIT CODE, "cpu": S, "user": S, "wall": S} (its CPU and its reaped children's).
At the end of stdin the children still running are stopped and the server exits.

What the server loaded read its environment once, at the start: a command whose environment differs
from the server's in anything but JOB_VARIABLES is refused (ForkServer.start), since it would run on
what the server's environment set up. The modules of this project read those when they are imported,
which each child does itself.
"""

import atexit
import gc
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

# read by this project's modules as they load; and pytest's note of the test running, which changes from test to test
JOB_VARIABLES = re.compile(r"((PARITY_|PYTORCH_PARITY_)\w*|PYTEST_CURRENT_TEST)\Z")
POLL = 0.05  # seconds between looks for ended children while no command comes


# --- the server (Python) ---

def serve(preload):
    """Imports `preload`, then forks a child per command until stdin ends; returns in a child, with its command."""
    for module in preload:
        __import__(module)
    gc.freeze()  # what was loaded stays out of the children's collections, which would write to (and copy) its pages:
    # 0.35 CPU-s a child session
    running, buffer = {}, b""
    while True:
        readable, _, _ = select.select([0], [], [], POLL)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                _stop(running)
                return None
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    return request
                running[pid] = time.monotonic()
                _answer({"started": pid})
        _reap(running, os.WNOHANG)


def _reap(running, options):
    while running:
        pid, status, usage = os.wait4(-1, options)
        if pid == 0:
            return
        started = running.pop(pid, None)
        if started is not None:
            _answer({"pid": pid, "status": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                     "user": usage.ru_utime, "wall": time.monotonic() - started})


def _stop(running):
    for pid in running:
        os.kill(pid, signal.SIGTERM)
    _reap(running, 0)


def _answer(message):
    os.write(1, (json.dumps(message) + "\n").encode())


def run_child(request):
    """In the forked child: the command's variables, folder, output and priority, then `python -m MODULE ARGS` as
    the interpreter runs it (runpy, sys.argv), and its end."""
    import runpy

    output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    argv = request["argv"]
    if len(argv) < 2 or argv[0] != "-m":
        print(f"parity.fork_server: serves `python -m MODULE ARGS`, not {argv}", file=sys.stderr)
        os._exit(2)
    os.chdir(request["cwd"])
    os.environ.update(request["env"])
    os.nice(request.get("niceness", 0))
    sys.argv = ["-m", *argv[2:]]
    sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
    try:
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as end:
        code = end.code
    exit_as_the_interpreter(code)


def exit_as_the_interpreter(code):
    """What the interpreter does at its exit with SystemExit(code), but without freeing its objects: that would write to
    (and so copy) every page of what the server loaded, 1.3 CPU-s a child session."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


# --- the parent's side (for either server) ---

class ForkServer:
    """A fork server started with `command` (the interpreter, the server and what it loads) in `env`; start()
    runs a command through it, and a Job stands for that command's process. Used as a context manager: at its
    end the server's children still running are stopped and the server is waited for."""

    def __init__(self, interpreter, command, env, cwd):
        self.interpreter, self.env, self.cwd = interpreter, dict(env), str(cwd)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, cwd=cwd)
        self.ended = {}  # pid -> its end message, for a Job not waited for yet

    @classmethod
    def python(cls, preload, env, cwd):
        return cls(sys.executable, [sys.executable, "-m", "parity.fork_server", *preload], env, cwd)

    @classmethod
    def ruby(cls, preload, env, cwd):
        return cls("ruby", ["bundle", "exec", "ruby", os.path.join(os.path.dirname(__file__), "fork_server.rb"), *preload],
                   env, cwd)

    def start(self, argv, env, output, niceness=0):
        """The Job running `argv` (what follows the interpreter on its command line) with environment `env`, its
        stdout and stderr in the file `output`."""
        differ = {name: env.get(name) for name in set(env) | set(self.env) if env.get(name) != self.env.get(name)}
        others = sorted(name for name in differ if not JOB_VARIABLES.match(name) or differ[name] is None)
        if others:
            raise ValueError(f"a fork server runs its commands in its own environment, and {argv} needs other values "
                             f"of {', '.join(others)}: start a server with them")
        self._send({"argv": [str(a) for a in argv], "env": differ, "cwd": self.cwd, "output": str(output),
                    "niceness": niceness})
        while True:
            message = self._receive(None)
            if "started" in message:
                return Job(self, message["started"], argv)

    def __enter__(self):
        return self

    def __exit__(self, *error):
        self.close()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.process.stdout.close()

    def _send(self, request):
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()

    def _receive(self, deadline):
        """The next message (an end is kept in self.ended); TimeoutError past `deadline` (time.monotonic)."""
        if deadline is not None and not select.select([self.process.stdout], [], [], max(0, deadline - time.monotonic()))[0]:
            raise TimeoutError
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server {self.process.args} ended (exit {self.process.wait()})")
        message = json.loads(line)
        if "pid" in message:
            self.ended[message["pid"]] = message
        return message


def run_each(starts, parallel, timeout):
    """Calls each of `starts` (a function that starts a Job) with at most `parallel` Jobs running, oldest awaited
    first; the Jobs, ended, in the order of `starts`."""
    waiting, running, jobs = list(starts), [], []
    while waiting or running:
        while waiting and len(running) < parallel:
            job = waiting.pop(0)()
            running.append(job)
            jobs.append(job)
        running.pop(0).wait(timeout)
    return jobs


class Job:
    """A command a ForkServer runs: wait() for its end, then returncode (and, in PARITY_CPU_LOG, its CPU); stop()."""

    def __init__(self, server, pid, argv):
        from parity import cpu_log

        self.server, self.pid, self.argv, self.returncode = server, pid, argv, None
        self.test = cpu_log.current_test()

    def wait(self, timeout=None):
        from parity import cpu_log

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if self.pid in self.server.ended:
                end = self.server.ended.pop(self.pid)
                self.returncode = end["status"]
                cpu_log.forked([self.server.interpreter, *self.argv], end, self.test)
            else:
                try:
                    self.server._receive(deadline)
                except TimeoutError:
                    raise subprocess.TimeoutExpired(self.argv, timeout) from None
        return self.returncode

    def stop(self):
        """Ends the command if it still runs (SIGTERM), and waits for it."""
        try:
            while self.returncode is None and self.pid not in self.server.ended:
                self.server._receive(time.monotonic())  # the ends the server told already
        except TimeoutError:
            os.kill(self.pid, signal.SIGTERM)
        self.wait(timeout=60)


if __name__ == "__main__":
    child = serve(sys.argv[1:])
    if child is not None:
        run_child(child)
