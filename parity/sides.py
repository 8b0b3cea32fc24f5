"""Running either side for real, as a subprocess, and both at the same time.

The suite runs the Python and the Ruby side side by side, each with SIDE_THREADS threads (half of
this process's setting, at least one): the same thread count on both sides keeps them on the same
stack, and the two together use the cores they were given. A side that fails raises with its
command, exit code and stderr, so the failure text says why.
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from parity.settings import ROOT, RUBY_PORT, RUBY_SERVER
from reference_py import threads

SIDE_THREADS = max(1, threads.thread_count() // 2)
# LibTorch's OpenMP threads sleep when idle instead of spinning (libgomp's default is to spin for a while):
# the suite runs several processes at once, and a multi-threaded one (the across-stacks reference at
# SIDE_THREADS + 1, a child pytest at the session's count) spun on cores the others needed, doubling its CPU
# time (a replay of feature_extractor at 2 threads on a busy machine: 25.6 s, passive 9.8 s, 1 thread 11.4 s).
# The wait policy changes no result: the threads split the work as before. Every process the suite starts
# inherits it; a value set by the user is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
BACKGROUND_NICENESS = 10
TIMEOUT = 1800


class SideFailed(AssertionError):
    pass


@dataclass
class Command:
    side: str  # "Python" or "Ruby"
    argv: list
    extra_env: dict = field(default_factory=dict)

    def env(self):
        env = dict(os.environ, BUNDLE_GEMFILE=str(ROOT / "Gemfile"))
        env[threads.ENV_VAR] = env["OMP_NUM_THREADS"] = str(SIDE_THREADS)
        env.update(self.extra_env)
        return env

    def start(self, background=False, server=None):
        """The running process; its output goes to files, so that a chatty side never waits on a full pipe.
        A background process runs at a lower priority (nice BACKGROUND_NICENESS): it takes the cores the
        tests leave idle. With `server` (a parity.fork_server.ForkServer of this side's interpreter), or for
        Ruby with PARITY_RUBY_SERVER, the entry point is forked by that server (its Job waits, polls and ends
        as a process does), when it runs in the server's environment."""
        if server is None and self.side == "Ruby":
            server = ruby_server()
        if server is not None and self.argv[0] == server.interpreter and server.accepts(self.env()):
            stdout, stderr = tempfile.NamedTemporaryFile("w+"), tempfile.NamedTemporaryFile("w+")
            process = server.start(self.argv[1:], self.env(), stdout.name, errors=stderr.name,
                                   niceness=BACKGROUND_NICENESS if background else 0)
        else:
            stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            niceness = (lambda: os.nice(BACKGROUND_NICENESS)) if background else None
            process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env(), stdout=stdout, stderr=stderr, text=True,
                                       preexec_fn=niceness)
        process.output_files = (stdout, stderr)
        return process


@functools.cache
def ruby_server():
    """A connection to the Ruby fork server at PARITY_RUBY_SERVER (a fault-injection child's parent's), or None."""
    if not RUBY_SERVER:
        return None
    from parity.fork_server import ForkServer

    return ForkServer.connect(RUBY_SERVER)


def thread_env(thread_count):
    return {} if thread_count is None else {threads.ENV_VAR: str(thread_count), "OMP_NUM_THREADS": str(thread_count)}


def ruby(script, *args, thread_count=None):
    """The port's bin/SCRIPT (at SIDE_THREADS, or thread_count threads)."""
    return Command("Ruby", ["ruby", str(RUBY_PORT / "bin" / script), *map(str, args)], thread_env(thread_count))


def rake(task, **env):
    """`rake TASK` from the repository root, with environment variables as its options (VAR=value)."""
    return Command("Ruby", ["rake", task], {name.upper(): str(value) for name, value in env.items()})


def python(script, *args, thread_count=None):
    """reference_py/SCRIPT, with this interpreter (at SIDE_THREADS, or thread_count threads)."""
    return Command("Python", [sys.executable, str(ROOT / "reference_py" / script), *map(str, args)],
                   thread_env(thread_count))


def _wait(process):
    """(stdout, stderr) once the process has ended."""
    process.wait(timeout=TIMEOUT)
    texts = [_read(file) for file in process.output_files]
    for file in process.output_files:
        file.close()
    return texts


def _read(file):
    file.seek(0)
    return file.read()


def _failed(command, process, stdout, stderr):
    return SideFailed(f"the {command.side} side failed (exit {process.returncode}): {' '.join(command.argv)}\n"
                      f"--- stderr ---\n{stderr[-8000:]}\n--- stdout ---\n{stdout[-2000:]}")


def _finish(command, process):
    stdout, stderr = _wait(process)
    if process.returncode != 0:
        raise _failed(command, process, stdout, stderr)
    return stdout


class Running:
    """Commands started together; wait() gives their outputs once all have ended, and raises for the first
    that failed."""

    def __init__(self, commands, background=False, servers=None):
        self.commands = commands
        self.processes = [command.start(background, (servers or {}).get(command.side)) for command in commands]
        self.outputs = None

    def wait(self):
        if self.outputs is None:
            failure, outputs = None, []
            for command, process in zip(self.commands, self.processes):
                try:
                    outputs.append(_finish(command, process))
                except SideFailed as error:
                    failure = failure or error
            self.outputs = failure or outputs
        if isinstance(self.outputs, SideFailed):
            raise self.outputs
        return self.outputs


    def check(self):
        """Raise SideFailed, with its output, for the first command that has already ended with an error; while
        the others run (a caller that reads their results as they come)."""
        for command, process in zip(self.commands, self.processes):
            if process.poll() not in (None, 0):
                stdout, stderr = (_read(file) for file in process.output_files)
                raise _failed(command, process, stdout, stderr)

    def stop(self):
        """End every process still running (a session that stops before it reads them)."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for file in process.output_files:
                file.close()


def start_together(*commands, background=False, servers=None):
    """Start every command at once (at a lower priority in the background; `servers`: side ("Python", "Ruby") -> the
    ForkServer that forks that side's commands); Running.wait() for their outputs."""
    return Running(commands, background, servers)


# What each language's session server (session_server) loads before it forks: LibTorch, torchvision, and for Python
# matplotlib, which train.py draws its figures with
SESSION_PRELOAD = {"Python": ("torch", "torchvision", "matplotlib.pyplot"), "Ruby": ("torch", "torchvision")}
_SESSION_SERVERS = {}  # side -> its session server, once a command needed it (closed as the session ends)


def session_server(side):
    """The fork server of `side` ("Python", "Ruby") that this session's runs are forked by (parity/fork_server.py): it
    loaded SESSION_PRELOAD[side] once, in the environment of this session's commands (Command.env), and serves until the
    session ends (close_session_servers), so that neither a run nor a module pays that start again: each module that
    forked its runs started servers of its own, 3-4 CPU-s each. The Ruby one listens on a socket too (its socket_path),
    for the fault-injection children; in such a child it is its parent's (PARITY_RUBY_SERVER)."""
    if side == "Ruby" and ruby_server() is not None:
        return ruby_server()
    if side not in _SESSION_SERVERS:
        from parity.fork_server import ForkServer

        env = Command(side, []).env()
        if side == "Python":
            server = ForkServer.python(SESSION_PRELOAD[side], env, ROOT)
        else:
            socket_path = os.path.join(tempfile.mkdtemp(prefix="parity-ruby-server-"), "server")
            server = ForkServer.ruby(SESSION_PRELOAD[side], env, ROOT, socket_path)
            server.socket_path = socket_path
        _SESSION_SERVERS[side] = server
    return _SESSION_SERVERS[side]


def close_session_servers():
    """End the session servers (their commands still running are stopped) and remove the Ruby one's socket folder."""
    while _SESSION_SERVERS:
        server = _SESSION_SERVERS.popitem()[1]
        server.close()
        if getattr(server, "socket_path", None):
            shutil.rmtree(os.path.dirname(server.socket_path), ignore_errors=True)


def start_served(*commands, background=False):
    """start_together, each command forked by the session server of its language (session_server), so that none pays
    LibTorch's start."""
    return Running(commands, background, {side: session_server(side) for side in {command.side for command in commands}})


def run_together(*commands):
    """Start every command at once, wait for all; raises for the first that failed."""
    return start_together(*commands).wait()


def run_ruby(script, *args):
    """Run the port's bin/SCRIPT for real."""
    return run_together(ruby(script, *args))[0]


def run_python(script, *args):
    """Run reference_py/SCRIPT for real, with this interpreter."""
    return run_together(python(script, *args))[0]
