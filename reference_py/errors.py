"""Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2."""

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM


class UserError(Exception):
    """A problem the user can fix: a missing file, a corrupt image, a wrong option. Modules subclass it
    for their own (tensor_io.BundleError, threads.SettingError), so run_cli catches them all."""


def read_json(path, fix, missing="not found"):
    """A JSON file's content, or a UserError saying what is wrong with the file and how to fix it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} {missing}; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); {fix}") from None


def one_line(message):
    return " ".join(str(message).split())


def json_type(value):
    """JSON's name for the type of a parsed value (the same word on both sides)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def display(path):
    """A path for a message: bytes that are not UTF-8 as \\xNN (Python and Ruby write them alike)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line ("…; see COMMAND --help") and exit 2 through run_cli."""

    def error(self, message):
        raise UserError(f"{message}; see {self.prog} --help")


def check_count(value, option):
    """A whole number of at least 1 (epochs, batch size, step size)."""
    if value < 1:
        raise UserError(f"{option} {value}: expected a whole number of at least 1")
    return value


WORKERS_MAX = 64


def check_workers(value, option="--workers"):
    """DataLoader worker processes: 0 (load in the main process) to WORKERS_MAX."""
    if not 0 <= value <= WORKERS_MAX:
        raise UserError(f"{option} {value}: expected a whole number from 0 to {WORKERS_MAX} "
                        f"(DataLoader worker processes; 0 loads in the main process)")
    return value


def check_rate(value, option):
    """A finite number of at least 0 (learning rates, momentum, gamma)."""
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{option} {value}: expected a finite number of at least 0")
    return value


SEED_MAX = 2**64 - 2  # LibTorch's seeds are unsigned 64-bit, and the val loader's is seed + 1


def check_seed(value, option="--seed"):
    if not 0 <= value <= SEED_MAX:
        raise UserError(f"{option} {value}: expected a whole number from 0 to {SEED_MAX} (LibTorch's seeds are "
                        f"unsigned 64-bit; the val loader uses seed + 1)")
    return value


def _terminate(signum, frame):
    raise SystemExit(EXIT_TERMINATED)  # unwinds: temporary outputs are removed, locks released


def run_cli(main, argv=None):
    """Run a command-line entry point `main(argv)`; a user's problem becomes one line and exit 2."""
    program = os.path.basename(sys.argv[0]) or "reference_py"
    signal.signal(signal.SIGTERM, _terminate)
    try:
        status = main(argv)
    except UserError as error:
        print(f"{program}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except OSError as error:  # a full disk, a folder we may not write: the system says what and where
        print(f"{program}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
