"""Write-then-rename: a file is written into a temporary .NAME.<12 hex>.tmp beside it and renamed into place,
so a reader sees the old content or the whole new content, never a half, and a killed run leaves only a
temporary that the next claim of the output tidies by its name (leftover_pattern; reference_py/output_claim.py).

The Ruby twin is ruby_port/lib/hymenoptera/atomic.rb.
"""

import contextlib
import os
import re
import secrets
from pathlib import Path

from reference_py.lock import signals_held


def leftover_pattern(name, kind):
    """The temporary names made for target `name`: .NAME.<12 hex>.tmp (kind "tmp") and .NAME.<12 hex>.old."""
    return re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{12}}\.{kind}")


def make_temporary(target, make):
    """make(path) on a new .NAME.<12 hex>.tmp beside `target` (the mode a plain open/mkdir gives); its path."""
    while True:
        path = Path(target).with_name(f".{Path(target).name}.{secrets.token_hex(6)}.tmp")
        try:
            make(path)
            return path
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(target):
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with signals_held():
            tmp = make_temporary(target, lambda path: os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
        yield tmp
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
