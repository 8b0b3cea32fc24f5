"""The writers' lock: every writer of the project (train, replay, the other tools' outputs and the recorder's
run folders, reference_py/output_claim.py and parity/run_format.py) takes it beside its output, so that two runs
on one output exclude each other, in either language. And signals_held, which keeps a signal from landing
between the making of a file and the code that cleans it up.

The Ruby twin is ruby_port/lib/pytorch_parity/lock.rb (in the library: its recorder takes the lock too, and
loads without the port).
"""

import contextlib
import fcntl
import os
import signal
import threading
from pathlib import Path


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM wait until the block is done, then take effect: a temporary entry made inside is
    already in its cleanup's hands when they do (a signal between its creation and the `try` would leak it).

    Signals reach Python's handlers in the main thread only; elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


class Lock:
    """An exclusive flock on `path`, holding the holder's process id, released by the kernel if the process
    dies; the file is removed when released (and re-taken if it vanished meanwhile)."""

    def __init__(self, path):
        self.path = Path(path)
        self.fd = None

    @classmethod
    def beside(cls, target):
        """The writers' lock of `target`: .NAME.lock in its folder (a trainer's output and a recording alike)."""
        target = Path(target)
        return cls(target.with_name(f".{target.name}.lock"))

    def acquire(self):
        """None once held; else the process id the holder wrote (or "?")."""
        with signals_held():  # a signal between the file's creation and self.fd would leave it behind
            return self._take()

    def _take(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip()
                os.close(fd)
                return holder or "?"
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return None
            os.close(fd)  # released and removed by its holder between our open and our flock: again

    def release(self):
        if self.fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None
