"""Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2."""

import json
import math
import os
import re
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


# One grammar for the numbers of every option on both sides (Ruby's twins in errors.rb): ASCII digits only
# (Python's int() and float() also read other scripts' digits, such as '١'; Ruby's Integer() does not), no
# separators ('1__0': Ruby read 10, Python refused), no leading zeros ('010' is octal to Ruby's Integer()), no
# sign but '-'. Whole numbers of at most 100 digits: more than any option's range, and fewer than the 4300
# above which Python's int() refuses a word.
INT_WORD = re.compile(r"-?(0|[1-9][0-9]{0,99})")
FLOAT_WORD = re.compile(r"-?((0|[1-9][0-9]*)(\.[0-9]+)?|\.[0-9]+)([eE][-+]?[0-9]+)?|-?(nan|inf|infinity)", re.IGNORECASE)


def quoted(word):
    """A command-line word in a message, alike on both sides (not repr, which Ruby's inspect does not match)."""
    return f"'{display(word)}'"


def parse_int(word, option):
    """A whole number in INT_WORD's grammar, or a UserError naming the option and the word."""
    if not INT_WORD.fullmatch(word):
        raise UserError(f"argument {option}: invalid int value: {quoted(word)} (write a whole number in ASCII digits, "
                        f"such as 25, without separators or leading zeros)")
    return int(word)


def parse_float(word, option):
    """A number in FLOAT_WORD's grammar (nan and inf included: the ranges refuse them in words of their own)."""
    if not FLOAT_WORD.fullmatch(word):
        raise UserError(f"argument {option}: invalid float value: {quoted(word)} (write a number in ASCII digits, "
                        f"such as 0.001 or 1e-4, without separators or leading zeros)")
    return float(word)


def parse_choice(word, option, choices):
    """One of `choices`, spelled in full: a prefix is not completed (Ruby's OptionParser completes one)."""
    if word not in choices:
        raise UserError(f"argument {option}: invalid choice: {quoted(word)} (choose from "
                        f"{', '.join(map(quoted, choices))})")
    return word


def unrecognized(word, options, after_separator=False):
    """The message for a word no option or argument takes; an abbreviation is told the options it stands for, a
    word after "--" (the end of the options) that it is not an option there."""
    if after_separator:
        return (f"unrecognized argument {quoted(word)} after '--' (the words after '--' are arguments, not options: "
                f"give options before it)")
    name = word.split("=", 1)[0]
    meant = [option for option in options if name.startswith("--") and name != "--" and option.startswith(name)]
    if meant:
        return f"unrecognized argument {quoted(word)}: options are not abbreviated (did you mean {' or '.join(meant)}?)"
    return f"unrecognized argument {quoted(word)}"


def check_count(value, option):
    """A whole number of at least 1 (epochs, batch size, step size)."""
    if value < 1:
        raise UserError(f"{option} {value}: expected a whole number of at least 1")
    return value


WORKERS_MAX = 64


def check_between(value, option, low, high, why):
    """A whole number from low to high; why: what the bounds come from, said in the error."""
    if not low <= value <= high:
        raise UserError(f"{option} {value}: expected a whole number from {low} to {high} ({why})")
    return value


def check_workers(value, option="--workers"):
    """DataLoader worker processes: 0 (load in the main process) to WORKERS_MAX."""
    return check_between(value, option, 0, WORKERS_MAX, "DataLoader worker processes; 0 loads in the main process")


def check_rate(value, option):
    """A finite number of at least 0 (learning rates, momentum, gamma)."""
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{option} {value}: expected a finite number of at least 0")
    return value


SEED_MAX = 2**64 - 2  # LibTorch's seeds are unsigned 64-bit, and the val loader's is seed + 1


def check_seed(value, option="--seed"):
    return check_between(value, option, 0, SEED_MAX, "LibTorch's seeds are unsigned 64-bit; the val loader uses seed + 1")


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
