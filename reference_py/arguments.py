"""argparse as every entry point uses it: one table of options and positionals per entry point (add_argument),
read with errors.py's grammar, refused in one line. Ruby's twin is ruby_port/lib/hymenoptera/arguments.rb."""

import argparse
import functools
import sys

from reference_py.errors import UserError, parse_choice, parse_float, parse_int, unrecognized


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors.py's grammar for type=int, type=float and choices, options only in full (no
    allow_abbrev), "--" as the end of the options, and errors in one line ("…; see COMMAND --help") and exit 2
    through run_cli."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def add_argument(self, *names, **kwargs):
        option = next((name for name in names if name.startswith("--")), kwargs.get("metavar") or names[0])
        if kwargs.get("type") in (int, float):
            kwargs["type"] = functools.partial(parse_int if kwargs["type"] is int else parse_float, option=option)
        elif "choices" in kwargs and "type" not in kwargs:
            kwargs["type"] = functools.partial(parse_choice, option=option, choices=tuple(kwargs["choices"]))
        return super().add_argument(*names, **kwargs)

    class Refused(UserError):
        """The parser's own one-line error, already ending in "see COMMAND --help"."""

    def parse_known_args(self, args=None, namespace=None):
        try:
            return super().parse_known_args(args, namespace)
        except ArgumentParser.Refused:
            raise
        except UserError as error:  # from parse_int, parse_float or parse_choice, which argparse lets through
            self.error(str(error))

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        parsed, extras = self.parse_known_args(args, namespace)
        if "--" in extras:  # the end of the options, which no positional took (argparse 3.12 drops it itself)
            extras.remove("--")
        if extras:
            # the words after "--" that no positional takes are the last of the extras (positionals take them in order)
            tail = args[args.index("--") + 1:] if "--" in args else []
            after = len(extras) <= len(tail) and extras == tail[len(tail) - len(extras):]
            self.error(unrecognized(extras[0], [o for o in self._option_string_actions if o.startswith("--")],
                                    after_separator=after))
        return parsed

    def error(self, message):
        raise ArgumentParser.Refused(f"{message}; see {self.prog} --help")
