"""One parser's answers, alike on both sides (the twin: ruby_port/test/arguments_test.rb, the same table)."""

import pytest

from reference_py.arguments import ArgumentParser
from reference_py.errors import UserError


def parser():
    parser = ArgumentParser(prog="prog")
    parser.add_argument("spec", metavar="SPEC.json")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--many", nargs="+", choices=["a", "b"])
    parser.add_argument("--size", type=int, nargs=4)
    parser.add_argument("--flag", action="store_true")
    return parser


AFTER = "(the words after '--' are arguments, not options: give options before it)"
REFUSED = [
    ([], "the following arguments are required: SPEC.json"),
    (["s", "--count"], "argument --count: expected one argument"),
    (["--count", "--", "s"], "argument --count: expected one argument"),
    (["s", "--rate", "-1e3"], "argument --rate: expected one argument"),
    (["s", "--count", "x"], "argument --count: invalid int value: 'x' (write a whole number in ASCII digits, such as 25, "
                            "without separators or leading zeros)"),
    (["s", "--many"], "argument --many: expected at least one argument"),
    (["s", "--many", "a", "c"], "argument --many: invalid choice: 'c' (choose from 'a', 'b')"),
    (["s", "--size", "1", "2", "3"], "argument --size: expected 4 arguments"),
    (["s", "--size=1"], "argument --size: expected 4 arguments"),
    (["s", "--flag=1"], "argument --flag: ignored explicit argument '1'"),
    (["s", "--cou", "1"], "unrecognized argument '--cou': options are not abbreviated (did you mean --count?)"),
    (["s", "-c", "1"], "unrecognized argument '-c'"),
    (["s", "t"], "unrecognized argument 't'"),
    (["s", "--many", "a", "--flag", "b"], "unrecognized argument 'b'"),
    (["s", "--", "--count"], f"unrecognized argument '--count' after '--' {AFTER}"),
    (["--", "s", "t"], f"unrecognized argument 't' after '--' {AFTER}"),
    (["--", "--count", "1"], f"unrecognized argument '1' after '--' {AFTER}"),
]
READ = [
    (["s"], {"spec": "s", "count": 1, "rate": None, "many": None, "size": None, "flag": False}),
    (["s", "--"], {"spec": "s"}),
    (["--", "-s"], {"spec": "-s"}),
    (["--count=3", "s", "--rate", "-1", "--flag"], {"spec": "s", "count": 3, "rate": -1.0, "flag": True}),
    (["--many", "a", "b", "--size", "1", "2", "3", "4", "s"], {"spec": "s", "many": ["a", "b"], "size": [1, 2, 3, 4]}),
    (["s", "--count", "1", "--count", "2"], {"count": 2}),
]


@pytest.mark.parametrize("argv,message", REFUSED)
def test_a_bad_command_line_is_refused_in_argparse_words(argv, message):
    with pytest.raises(UserError) as refused:
        parser().parse_args(argv)
    assert str(refused.value) == f"{message}; see prog --help"


@pytest.mark.parametrize("argv,values", READ)
def test_a_good_command_line_is_read(argv, values):
    args = vars(parser().parse_args(argv))
    assert {key: args[key] for key in values} == values
