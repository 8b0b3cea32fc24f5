"""Claim an output before any long work, and never destroy what the run did not create.

Every writer's output (train's OUT_DIR/STRATEGY, replay's --out, export_fixtures' --out, pretrained's
--out, preprocess's OUT_STEM, standin_data's --out, the zoo's --out, bench/run.py's --out) is an Output:
claimed before any long work, written last. One claim rule for all:

- A folder's MARKER names the tool that wrote it and the files it wrote (a file is recognised by its
  tool). A tool claims only a new or empty folder or its own earlier output: never another tool's, never
  one holding files it did not write (export_fixtures alone keeps one it did not write, a README.md:
  export_fixtures.FixturesFolder). Otherwise it is refused (UserError, exit 2) and nothing is touched; so
  is a folder it may not write in.
- It takes the writers' lock beside the target (.NAME.lock, reference_py/lock.py: released by the kernel if
  the process dies), so a second run on the same output is refused while the first runs.
- Under the lock, what an interrupted run left beside the target is tidied by name, and reported on
  stderr: a temporary .NAME.<12 hex>.tmp is removed, a .NAME.<12 hex>.old (a swap cut short) restored
  or removed. Nothing else is touched.
- The result is written into a temporary folder (or file) beside the target and renamed into place
  (reference_py/atomic.py).

The Ruby twin is ruby_port/lib/hymenoptera/output_claim.rb.
"""

import contextlib
import errno
import json
import os
import shutil
import stat
import sys
from pathlib import Path

from reference_py import atomic
from reference_py.errors import UserError
from reference_py.lock import Lock, signals_held

MARKER = ".hymenoptera-output.json"
SIGNATURE_SUFFIXES = (".json", ".bin", ".png", ".pth")  # what a tool wrote before MARKER existed
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_path_option(value, option):
    """An output option's value: a path, not an empty word (Ruby's File.join('', x) is /x)."""
    if value is None or not str(value).strip():
        raise UserError(f"{option} {json.dumps(str(value or ''))}: expected a path; pass a new folder or file "
                        f"name, e.g. {option} runs/mine")
    return Path(value)


def real_path(path):
    """`path` made absolute (".." taken away as written), its longest existing part with every link resolved and
    the rest as written: where a folder that may not exist yet would be (output_claim.rb's real_path)."""
    path = os.path.abspath(path)
    rest = []
    while not os.path.exists(path) and path != os.path.dirname(path):
        path, name = os.path.split(path)
        rest.insert(0, name)
    return os.path.join(os.path.realpath(path), *rest)


def inside(path, folder):
    """Whether `path` is `folder` or below it, links resolved (neither needs to exist)."""
    path, folder = real_path(path), real_path(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


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


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


class Output:
    """What OutputDir and OutputFile share: the lock, the leftovers of interrupted runs, the parents made."""

    def __init__(self, target, tool, option):
        self.target = Path(target)
        self.tool = tool
        self.option = option
        self.lock = Lock.beside(self.target)
        self.made_parents = []

    def fix(self):
        return f"move it away or choose another {self.option}"

    def unwritable(self, folder, error):
        """The UserError for a folder the run may not write in, or `error` itself for another failure."""
        if error.errno not in UNWRITABLE:
            return error
        return UserError(f"{folder} is not writable ({error.strerror}); make it writable or choose another {self.option}")

    def _make_parents(self):
        missing = []
        for parent in [self.target.parent, *self.target.parent.parents]:
            try:  # one look each: another run may make the folder at any moment
                if stat.S_ISDIR(parent.stat().st_mode):
                    break
            except (FileNotFoundError, NotADirectoryError):
                if not parent.is_symlink():
                    missing.append(parent)
                    continue
            raise UserError(f"{self.option} {self.target}: {parent} is not a folder; {self.fix()}")
        for parent in reversed(missing):
            try:
                parent.mkdir()
            except FileExistsError:
                if parent.is_dir():
                    continue  # another run, starting at the same time, made it: theirs to keep
                raise UserError(f"{self.option} {self.target}: {parent} is not a folder; {self.fix()}") from None
            except OSError as error:
                raise self.unwritable(parent.parent, error) from None
            self.made_parents.append(parent)

    def claim(self):
        """Check the target, lock it, tidy what interrupted runs left; raises UserError before any work."""
        try:
            self._make_parents()
            try:
                holder = self.lock.acquire()
            except OSError as error:
                raise self.unwritable(self.target.parent, error) from None
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

    def leftovers(self, name, kind="tmp"):
        """What interrupted runs left beside the target, by name (leftover_pattern)."""
        pattern = atomic.leftover_pattern(name, kind)
        return sorted(p for p in self.target.parent.iterdir() if pattern.fullmatch(p.name))


class OutputDir(Output):
    """A folder written whole: MARKER inside names the tool and lists the files it wrote."""

    def __init__(self, target, tool, option, signature=None, legacy=None):
        super().__init__(target, tool, option)
        self.signature = signature  # a file every run of the tool wrote, before MARKER existed
        self.legacy = legacy  # or: folder -> the files such a run wrote there, None if it is not one

    def owned(self, folder):
        """The files of `folder` this tool wrote (relative paths), or None if the folder is not this tool's."""
        marker = read_marker(folder)
        if marker is not None:
            return set(marker["files"]) if marker.get("tool") == self.tool else None
        if self.legacy is not None:
            return self.legacy(folder)
        if self.signature and (Path(folder) / self.signature).is_file():
            return {f for f in files_below(folder) if f.endswith(SIGNATURE_SUFFIXES)}
        return None

    def files(self, folder):
        """The files of `folder` the claim weighs: every one below it, MARKER aside (files_below)."""
        return files_below(folder)

    def foreign(self, folder):
        """The files of `folder` this tool did not write, or None if the folder is not its own."""
        files = self.files(folder)
        owned = self.owned(folder)
        if owned is None:
            return None if files or (Path(folder) / MARKER).exists() else []
        return [f for f in files if f not in owned]

    def check_target(self):
        target = self.target
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise UserError(f"{target} exists and is not a folder {self.tool} wrote; {self.fix()}")
        if not target.exists():
            return
        marker = read_marker(target)
        if marker is not None and marker.get("tool") != self.tool:
            raise UserError(f"{target} was written by {marker.get('tool')}, not by {self.tool} (its {MARKER} says so); "
                            f"{self.fix()}")
        foreign = self.foreign(target)
        if foreign is None:
            raise UserError(f"{target} exists and was not written by {self.tool} (no {MARKER} in it); {self.fix()}")
        if foreign:
            raise UserError(f"{target} holds {len(foreign)} file(s) {self.tool} did not write (first: {foreign[0]}); "
                            f"{self.tool} replaces the whole folder: move them away or choose another {self.option}")

    def tidy_leftovers(self):
        for tmp in self.leftovers(self.target.name):
            _remove(tmp)
            _stderr(self.tool, f"removed {tmp}, left by an interrupted run")
        for old in self.leftovers(self.target.name, "old"):
            if self.target.exists() or self.target.is_symlink():
                _remove(old)
                _stderr(self.tool, f"removed {old}, left by an interrupted run")
            else:
                os.rename(old, self.target)
                _stderr(self.tool, f"restored {self.target} from {old}, left by a run interrupted while replacing it")

    def _new_marker(self, folder, files):
        (folder / MARKER).write_text(json.dumps({"tool": self.tool, "files": files}, indent=1) + "\n")

    @contextlib.contextmanager
    def write(self):
        """Yield a temporary folder beside the target; when the block succeeds it becomes the target."""
        tmp = None
        try:
            with signals_held():
                tmp = atomic.make_temporary(self.target, lambda path: os.mkdir(path, 0o777))
            yield tmp
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
        old = tmp.with_suffix(".old")
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old)  # the claim allowed only this tool's files in it


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
                _remove(tmp)
                _stderr(self.tool, f"removed {tmp}, left by an interrupted run")
