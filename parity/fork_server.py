"""A fork server: one process that loads LibTorch once (and what else it is told to), then forks a child for
each command it is given, which runs as the interpreter would have run it from the start. A child session
of the suite (`python -m pytest ...`, the fault-injection tests), a port's entry point in such a session
(`ruby ruby_port/bin/replay ...`) or a recorded Ruby port (`ruby -rLIB PORT.rb`, the diagnosis'
leave-one-out) then pays no LibTorch start, which a test that starts ten or twenty of them paid again and
again: a session of test_diagnose_walk.py 2.45 -> 0.95 CPU-s, a Ruby port's start and end (the bundle,
LibTorch, torchvision) 1.5 -> 0.14.

    python -m parity.fork_server MODULE...                    imports the MODULEs (torch, pytest...), then serves
    bundle exec ruby parity/fork_server.rb [--socket PATH] LIB...   requires the LIBs (torch), then serves

Each serves `python -m MODULE ARGS`, `python -c CODE ARGS` or `python SCRIPT ARGS` (Python), or `ruby [-rLIB...] SCRIPT
ARGS` (Ruby), one a line on stdin (the Ruby one also from each process connected to its socket PATH, answering it there)
as JSON:
{"argv": [what follows the interpreter], "env": {NAME: VALUE, or null to unset it}, "cwd": ...,
"output": FILE, "errors": FILE (optional), "niceness": N}. The child sets those variables, takes that
folder, sends its stdout to FILE (its stderr too, or to "errors"), lowers its priority by N, and runs the
command; the server answers {"started": PID} at once and, when the child has ended, {"pid": PID,
"status": EXIT CODE (-N: killed by signal N), "cpu": S, "user": S, "wall": S} (its CPU and its reaped
children's). At the end of stdin the children still running are stopped and the server exits; a
client that closes its connection takes its children still running with it.

What the server loaded read its environment once, at the start: a command whose environment differs
from the server's in anything but JOB_VARIABLES is refused (ForkServer.start), since it would run on
what the server's environment set up. The modules of this project read those when they are imported,
which each child does itself.
"""

import atexit
import gc
import json
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import types

# read by this project's modules as they load; pytest's note of the test running, which changes from test to test; and
# TORCH_HOME, which torch.hub (torch.rb's Hub) reads where it looks for a file, not as it loads
JOB_VARIABLES = re.compile(r"((PARITY_|PYTORCH_PARITY_)\w*|PYTEST_CURRENT_TEST|TORCH_HOME)\Z")
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
                stop(running)
                return None
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    return request
                running[pid] = time.monotonic()
                answer({"started": pid})
        reap(running, os.WNOHANG)


def reap(running, options):
    while running:
        pid, status, usage = os.wait4(-1, options)
        if pid == 0:
            return
        started = running.pop(pid, None)
        if started is not None:
            answer({"pid": pid, "status": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                     "user": usage.ru_utime, "wall": time.monotonic() - started})


def stop(running):
    for pid in running:
        os.kill(pid, signal.SIGTERM)
    reap(running, 0)


def answer(message):
    os.write(1, (json.dumps(message) + "\n").encode())


def run_child(request):
    """In the forked child: the command's variables, folder, output and priority, then `python -m MODULE ARGS`,
    `python -c CODE ARGS` or `python SCRIPT ARGS` as the interpreter runs it (runpy or exec, sys.argv, sys.path[0]), and
    its end."""
    import runpy

    _redirect(os.devnull, 0)
    _redirect(request["output"], 1)
    _redirect(request.get("errors"), 2)
    argv = request["argv"]
    module, code = (len(argv) >= 2 and argv[0] == option for option in ("-m", "-c"))
    if not (module or code) and (not argv or argv[0].startswith("-")):
        print(f"parity.fork_server: serves `python -m MODULE ARGS`, `python -c CODE ARGS` and `python SCRIPT ARGS`, "
              f"not {argv}", file=sys.stderr)
        os._exit(2)
    os.chdir(request["cwd"])
    for name, value in request["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    os.nice(request.get("niceness", 0))
    try:
        if module:
            sys.argv = ["-m", *argv[2:]]
            sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif code:
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""  # as `python -c` puts the working folder first
            main = types.ModuleType("__main__")  # a module of its own, as the interpreter's, not the server's
            sys.modules["__main__"] = main
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # as `python SCRIPT` puts the script's folder first
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as end:
        code = end.code
    exit_as_python(code)


def _redirect(path, descriptor):
    """The descriptor opened on `path` (read: stdin; written anew: the others); None: stderr goes with stdout."""
    if path is None:
        os.dup2(1, descriptor)
        return
    opened = os.open(path, os.O_RDONLY if descriptor == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    os.dup2(opened, descriptor)
    os.close(opened)


def exit_as_python(code):
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
    """A fork server started with `command` (the interpreter, the server and what it loads) in `env`, or one already
    running, reached through its socket (connect); start() runs a command through it, and a Job stands for that
    command's process. Used as a context manager: at its end the server's children still running are stopped and
    the server is waited for (a connection: its commands still running are stopped)."""

    def __init__(self, interpreter, env, cwd, command=None, socket_path=None):
        self.interpreter, self.env, self.cwd = interpreter, dict(env), str(cwd)
        self.ended = {}  # pid -> its end message, for a Job not waited for yet
        self.process = self.connection = None
        self.unread = b""
        if command is not None:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, cwd=cwd)
            self.reader, self.writer = self.process.stdout, self.process.stdin
        else:
            self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.connection.connect(str(socket_path))
            self.reader, self.writer = self.connection.makefile("rb", buffering=0), self.connection.makefile("wb")

    @classmethod
    def python(cls, preload, env, cwd):
        return cls(sys.executable, env, cwd, [sys.executable, "-m", "parity.fork_server", *preload])

    @classmethod
    def ruby(cls, preload, env, cwd, socket_path=None):
        """The Ruby server; with `socket_path`, other processes connect() to it there too (its environment beside it,
        in SOCKET_PATH.json), as long as this one runs."""
        listen = []
        if socket_path is not None:
            listen = ["--socket", str(socket_path)]
            pathlib.Path(f"{socket_path}.json").write_text(json.dumps({"env": dict(env), "cwd": str(cwd)}))
        server = cls("ruby", env, cwd, ["bundle", "exec", "ruby", os.path.join(os.path.dirname(__file__), "fork_server.rb"),
                                        *listen, *preload])
        while socket_path is not None and not os.path.exists(socket_path) and server.process.poll() is None:
            time.sleep(POLL)  # the server listens once it has loaded what it preloads
        return server

    @classmethod
    def connect(cls, socket_path):
        """A connection to the Ruby server listening at `socket_path` (ruby(socket_path=...))."""
        started = json.loads(pathlib.Path(f"{socket_path}.json").read_text())
        return cls("ruby", started["env"], started["cwd"], socket_path=socket_path)

    def accepts(self, env):
        """Whether a command with environment `env` can run here: it differs from the server's in JOB_VARIABLES only."""
        return not self._others(env)

    def _others(self, env):
        return sorted(name for name in set(env) | set(self.env)
                      if env.get(name) != self.env.get(name) and not JOB_VARIABLES.match(name))

    def start(self, argv, env, output, niceness=0, errors=None, cwd=None):
        """The Job running `argv` (what follows the interpreter on its command line) with environment `env`, its
        stdout (and stderr, unless `errors` is another file) in the file `output`, in the folder `cwd` (the server's
        unless given)."""
        others = self._others(env)
        if others:
            raise ValueError(f"a fork server runs its commands in its own environment, and {argv} needs other values "
                             f"of {', '.join(others)}: start a server with them")
        differ = {name: env.get(name) for name in set(env) | set(self.env) if env.get(name) != self.env.get(name)}
        request = {"argv": [str(a) for a in argv], "env": differ, "cwd": str(cwd or self.cwd), "output": str(output),
                   "niceness": niceness}
        if errors is not None:
            request["errors"] = str(errors)
        self._send(request)
        while True:
            message = self._receive(None)
            if "started" in message:
                return Job(self, message["started"], argv)

    def __enter__(self):
        return self

    def __exit__(self, *error):
        self.close()

    def close(self):
        self.writer.close()
        if self.process is not None:
            self.process.wait(timeout=60)
        self.reader.close()
        if self.connection is not None:
            self.connection.close()

    def _send(self, request):
        self.writer.write((json.dumps(request) + "\n").encode())
        self.writer.flush()

    def _receive(self, deadline):
        """The next message (an end is kept in self.ended); TimeoutError past `deadline` (time.monotonic). Read from
        the descriptor, not a buffered file: a line already buffered would not wake select."""
        while b"\n" not in self.unread:
            wait = None if deadline is None else max(0, deadline - time.monotonic())
            if not select.select([self.reader], [], [], wait)[0]:
                raise TimeoutError
            chunk = os.read(self.reader.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"the fork server ({self.interpreter}) ended")
            self.unread += chunk
        line, self.unread = self.unread.split(b"\n", 1)
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

    def poll(self):
        """The exit code once the command has ended, else None (what subprocess.Popen.poll says)."""
        try:
            while self.returncode is None and self.pid not in self.server.ended:
                self.server._receive(time.monotonic())  # the ends the server told already
        except TimeoutError:
            return None
        return self.wait()

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def send_signal(self, number):
        if self.poll() is None:
            os.kill(self.pid, number)

    def stop(self):
        """Ends the command if it still runs (SIGTERM), and waits for it."""
        self.terminate()
        self.wait(timeout=60)


if __name__ == "__main__":
    child = serve(sys.argv[1:])
    if child is not None:
        run_child(child)
