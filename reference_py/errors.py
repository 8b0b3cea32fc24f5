"""Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2."""

import json
import os
import sys
from pathlib import Path

from reference_py import threads
from reference_py.tensor_io import BundleError

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix: a missing file, a corrupt image, a wrong option."""


def read_json(path, fix, missing="not found"):
    """A JSON file's content, or a UserError saying what is wrong with the file and how to fix it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} {missing}; {fix}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); {fix}") from None


def one_line(message):
    return " ".join(str(message).split())


def run_cli(main, argv=None):
    """Run a command-line entry point `main(argv)`; a user's problem becomes one line and exit 2."""
    program = os.path.basename(sys.argv[0]) or "reference_py"
    try:
        status = main(argv)
    except (UserError, BundleError, threads.ThreadSettingError) as error:
        print(f"{program}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except OSError as error:  # a full disk, a folder we may not write: the system says what and where
        print(f"{program}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
