"""Write files so that a reader sees the old content or the whole new content, never a half; and never
destroy what the run did not create.

An entry point's output (train's OUT_DIR/STRATEGY, replay's --out, export_fixtures' --out, pretrained's
--out, preprocess's OUT_STEM) is an Output: claimed before any long work, written last.

- Claiming checks that the path is new, or was written by the same tool (a folder records the files
  it wrote in MARKER; a file is recognised by its tool), and that a folder holds no file the tool did
  not write; otherwise it is refused (UserError, exit 2) and nothing is touched.
- It takes a lock beside the target (LOCK_PATTERN, flock: released by the kernel if the process dies),
  so a second run on the same output is refused while the first runs.
- Under the lock, what an interrupted run left beside the target (a temporary .NAME.*.tmp, a .NAME.old
  of a swap cut short) is removed or restored, and reported on stderr.
- The result is written into a temporary folder (or file) beside the target and renamed into place.

The Ruby twin is ruby_port/lib/hymenoptera/atomic.rb.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from reference_py.errors import UserError

MARKER = ".hymenoptera-output.json"
SIGNATURE_SUFFIXES = (".json", ".bin", ".png", ".pth")  # what a tool wrote before MARKER existed


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_mode(path, mode):
    """mkstemp and mkdtemp make private (0600/0700) entries; give them the mode a plain open/mkdir would."""
    os.chmod(path, mode & ~_umask())


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


@contextlib.contextmanager
def atomic_path(target):
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with signals_held():
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
        _usual_mode(tmp, 0o666)
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def write_bytes(target, data):
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target, text):
    write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(target):
    """Yield a temporary directory beside `target`; it replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with signals_held():
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        _usual_mode(tmp, 0o777)
        yield tmp
        with signals_held():  # a signal between the two renames would leave the target missing
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_path_option(value, option):
    """An output option's value: a path, not an empty word (Ruby's File.join('', x) is /x)."""
    if value is None or not str(value).strip():
        raise UserError(f"{option} {json.dumps(str(value or ''))}: expected a path; pass a new folder or file "
                        f"name, e.g. {option} runs/mine")
    return Path(value)


def files_below(folder):
    """Relative paths (posix) of every file and link below `folder`, MARKER excepted, sorted."""
    folder = Path(folder)
    found = []
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(f for f in found if f != MARKER)


def read_marker(folder):
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("files"), list) else None


def _stderr(tool, message):
    print(f"{tool}: {message}", file=sys.stderr)


class Lock:
    """An exclusive flock on `path`; the file is removed when released (and re-taken if it vanished meanwhile)."""

    def __init__(self, path):
        self.path = Path(path)
        self.fd = None

    def acquire(self):
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


class Output:
    """What Output and OutputFile share: the lock, the leftovers of interrupted runs, the parents made."""

    def __init__(self, target, tool, option):
        self.target = Path(target)
        self.tool = tool
        self.option = option
        self.lock = Lock(self.target.with_name(f".{self.target.name}.lock"))
        self.made_parents = []

    def fix(self):
        return f"move it away or choose another {self.option}"

    def _make_parents(self):
        missing = []
        for parent in [self.target.parent, *self.target.parent.parents]:
            if parent.is_dir():
                break
            if parent.exists() or parent.is_symlink():
                raise UserError(f"{self.option} {self.target}: {parent} is not a folder; {self.fix()}")
            missing.append(parent)
        for parent in reversed(missing):
            parent.mkdir()
            self.made_parents.append(parent)

    def claim(self):
        """Check the target, lock it, tidy what interrupted runs left; raises UserError before any work."""
        self._make_parents()
        try:
            holder = self.lock.acquire()
            if holder is not None:
                raise UserError(f"{self.target} is being written by another run (process {holder}; lock "
                                f"{self.lock.path}); wait for it to finish or choose another {self.option}")
            self.tidy_leftovers()
            self.check_target()
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        self.lock.release()
        for parent in reversed(self.made_parents):  # the folders claim made, if the run wrote nothing there
            with contextlib.suppress(OSError):
                parent.rmdir()
        self.made_parents = []

    def __enter__(self):
        return self.claim()

    def __exit__(self, *exc):
        if exc[0] is None:
            self.made_parents = []  # they hold the result now
        self.release()

    def leftovers(self, name):
        pattern = re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]+\.tmp")
        return sorted(p for p in self.target.parent.iterdir() if pattern.fullmatch(p.name))


class OutputDir(Output):
    """A folder written whole: MARKER inside lists its files (or, with `owned`, the tool's own index does)."""

    def __init__(self, target, tool, option, signature=None, owned=None, record=MARKER, keep_foreign=()):
        super().__init__(target, tool, option)
        self.signature = signature  # a file every run of the tool wrote, before MARKER existed
        self.owned_of = owned  # the tool's own index instead of MARKER: folder -> owned files or None
        self.record = record  # the file that says what the tool wrote (MARKER, or the tool's index)
        self.keep_foreign = set(keep_foreign)  # when given, the names the tool writes: other files are kept

    def owned(self, folder):
        """The files of `folder` this tool wrote (relative paths), or None if the folder is not this tool's."""
        if self.owned_of is not None:
            return self.owned_of(folder)
        marker = read_marker(folder)
        if marker is not None:
            return set(marker["files"]) if marker.get("tool") == self.tool else None
        if self.signature and (Path(folder) / self.signature).is_file():
            return {f for f in files_below(folder) if f.endswith(SIGNATURE_SUFFIXES)}
        return None

    def foreign(self, folder):
        owned = self.owned(folder)
        files = files_below(folder)
        if owned is None and self.keep_foreign:
            return files  # none of them the tool's, and it keeps them all (a clone's fixtures/README.md)
        if owned is None:
            return None if files or (Path(folder) / MARKER).exists() else []
        return [f for f in files if f not in owned]

    def check_target(self):
        target = self.target
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise UserError(f"{target} exists and is not a folder {self.tool} wrote; {self.fix()}")
        if not target.exists():
            return
        foreign = self.foreign(target)
        if foreign is None:
            raise UserError(f"{target} exists and was not written by {self.tool} (no {self.record} in it); {self.fix()}")
        clashes = [f for f in foreign if f in self.keep_foreign]
        if clashes:
            raise UserError(f"{target / clashes[0]} was not written by {self.tool}, which would replace it; {self.fix()}")
        if foreign and not self.keep_foreign:
            raise UserError(f"{target} holds {len(foreign)} file(s) {self.tool} did not write (first: {foreign[0]}); "
                            f"{self.tool} replaces the whole folder: move them away or choose another {self.option}")

    def tidy_leftovers(self):
        for tmp in self.leftovers(self.target.name):
            ours = tmp.is_dir() and not tmp.is_symlink() and (
                (read_marker(tmp) or {}).get("tool") == self.tool or not any(tmp.iterdir()))  # empty: killed at once
            if ours:
                shutil.rmtree(tmp)
                _stderr(self.tool, f"removed {tmp}, left by an interrupted run")
            else:
                _stderr(self.tool, f"left {tmp} alone: it looks like a leftover of an interrupted run, but not one "
                                   f"of {self.tool}'s; remove it yourself")
        old = self.target.with_name(f".{self.target.name}.old")
        if old.is_dir() and not old.is_symlink() and self.foreign(old) == []:
            if self.target.exists() or self.target.is_symlink():
                self._remove_owned(old)
                _stderr(self.tool, f"removed {old}, left by an interrupted run")
            else:
                os.rename(old, self.target)
                _stderr(self.tool, f"restored {self.target} from {old}, left by a run interrupted while replacing it")

    def _remove_owned(self, folder):
        """Remove the files this tool wrote and the folders they leave empty; anything else stays."""
        owned = self.owned(folder) or set()
        for name in owned | {MARKER}:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                (folder / name).unlink()
        for root, _, _ in os.walk(folder, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(root)
        if folder.exists():
            _stderr(self.tool, f"kept {folder}: it holds files {self.tool} did not write")

    def _new_marker(self, folder, files):
        (folder / MARKER).write_text(json.dumps({"tool": self.tool, "files": files}, indent=1) + "\n")

    @contextlib.contextmanager
    def write(self):
        """Yield a temporary folder beside the target; when the block succeeds it becomes the target."""
        target = self.target
        tmp = None
        try:
            with signals_held():
                tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
            _usual_mode(tmp, 0o777)
            if self.owned_of is None:
                self._new_marker(tmp, [])  # a leftover of this run is recognisably this tool's
            yield tmp
            if self.owned_of is None:
                self._new_marker(tmp, files_below(tmp))
            with signals_held():  # a signal between the two renames would leave the target missing
                self._commit(tmp)
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit(self, tmp):
        target = self.target
        if not target.exists():
            os.rename(tmp, target)
            return
        self.check_target()  # nothing foreign has appeared while we worked
        kept = [name for name in self.foreign(target) or [] if self.keep_foreign and not (tmp / name).exists()]
        for name in kept:  # the user's files move to the new folder (hard links: the very same files)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(target / name, tmp / name, follow_symlinks=False)
        old = target.with_name(f".{target.name}.old")
        os.rename(target, old)
        os.rename(tmp, target)
        for name in kept:
            if os.path.samestat(os.lstat(old / name), os.lstat(target / name)):
                os.unlink(old / name)
        if self.owned(old) is not None:
            self._remove_owned(old)
        else:  # the empty folder the user made for us
            with contextlib.suppress(OSError):
                os.rmdir(old)


class OutputFile(Output):
    """A file (and its companions, e.g. net.pth.json or a bundle's .bin) written by renaming a temporary file.

    `owned(target)` says whether the existing target and companions are this tool's to replace."""

    def __init__(self, target, tool, option, owned, companions=()):
        super().__init__(target, tool, option)
        self.owned_by_tool = owned
        self.paths = [self.target, *(Path(p) for p in companions)]

    def check_target(self):
        for path in self.paths:
            if path.is_dir():
                raise UserError(f"{path} is a folder; {self.option} names a file: {self.fix()}")
        if any(path.exists() for path in self.paths) and not self.owned_by_tool(self.target):
            existing = next(path for path in self.paths if path.exists())
            raise UserError(f"{existing} exists and was not written by {self.tool}; {self.tool} does not replace "
                            f"it: {self.fix()}")

    def tidy_leftovers(self):
        for path in self.paths:
            for tmp in self.leftovers(path.name):
                if tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink()
                    _stderr(self.tool, f"removed {tmp}, left by an interrupted run")
