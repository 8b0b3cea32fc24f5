"""The options' grammar is read alike on both sides (the twin: ruby_port/test/bad_inputs_test.rb, test_options_grammar)."""

import math

import pytest

from reference_py.errors import UserError, parse_choice, parse_float, parse_int
from reference_py.train import get_args_parser

INTS = {"0": 0, "25": 25, "-1": -1, "18446744073709551614": 2**64 - 2}
NOT_INTS = ["01", "1__0", "1_0", "١", "²", "３", " 3", "3 ", "+3", "3.0", "0x10", "", "-", "9" * 101]
FLOATS = {"0.001": 0.001, "1e-4": 1e-4, ".5": 0.5, "-0.5": -0.5, "1E5": 1e5, "0": 0.0, "inf": math.inf,
          "-Infinity": -math.inf}
NOT_FLOATS = ["1.", "00.5", "01", "1_0", "٠.١", "０.１", "0x1p3", " 1", "+1", "", "1e", "e5", "infinite"]


@pytest.mark.parametrize("word", INTS)
def test_whole_numbers_in_ascii_digits_are_read(word):
    assert parse_int(word, "--epochs") == INTS[word]


@pytest.mark.parametrize("word", NOT_INTS)
def test_any_other_whole_number_is_refused_in_one_line(word):
    with pytest.raises(UserError) as refused:
        parse_int(word, "--epochs")
    assert str(refused.value).startswith(f"argument --epochs: invalid int value: '{word}' (write a whole number in ASCII")


@pytest.mark.parametrize("word", FLOATS)
def test_numbers_in_ascii_digits_are_read(word):
    assert parse_float(word, "--lr") == FLOATS[word]
    assert math.isnan(parse_float("nan", "--lr"))


@pytest.mark.parametrize("word", NOT_FLOATS)
def test_any_other_number_is_refused_in_one_line(word):
    with pytest.raises(UserError) as refused:
        parse_float(word, "--lr")
    assert str(refused.value).startswith(f"argument --lr: invalid float value: '{word}' (write a number in ASCII")


@pytest.mark.parametrize("word", ["fine", "Finetune", "finetune ", ""])
def test_a_choice_is_never_completed(word):
    with pytest.raises(UserError) as refused:
        parse_choice(word, "--strategy", ("finetune", "scratch"))
    assert str(refused.value) == f"argument --strategy: invalid choice: '{word}' (choose from 'finetune', 'scratch')"


@pytest.mark.parametrize("argv,message", [
    (["--epo", "3"], "unrecognized argument '--epo': options are not abbreviated (did you mean --epochs?)"),
    (["--batch_size", "3"], "unrecognized argument '--batch_size'"),
    (["-e", "3"], "unrecognized argument '-e'"),
    (["--epochs"], "argument --epochs: expected one argument"),
    (["--data-dir", "-x"], "argument --data-dir: expected one argument"),
    (["--record=1"], "argument --record: ignored explicit argument '1'"),
    (["3"], "unrecognized argument '3'"),
])
def test_options_are_written_in_full(argv, message):
    with pytest.raises(UserError) as refused:
        get_args_parser().parse_args(argv)
    assert str(refused.value) == f"{message}; see {get_args_parser().prog} --help"


def test_the_long_forms_are_read():
    args = get_args_parser().parse_args(["--epochs=3", "--seed", "0", "--lr", "0", "--strategy", "scratch"])
    assert (args.epochs, args.seed, args.lr, args.strategy) == (3, 0, 0.0, "scratch")
