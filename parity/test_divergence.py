"""first_divergence takes forward order from the reference's trace, whatever the modules are called."""

import torch

from parity.divergence import first_divergence
from parity.tolerances import BIT_IDENTICAL


def trace(*names):
    return {name: torch.full((2,), float(k)) for k, name in enumerate(names)}


def test_names_the_first_module_of_the_reference_order_that_differs():
    python = trace("stem", "block", "head")
    ruby = {**python, "head": python["head"] + 1, "block": python["block"] + 1}
    assert first_divergence(ruby, python, BIT_IDENTICAL).startswith("first divergence in forward order: module block (")


def test_names_a_module_one_side_did_not_trace():
    python = trace("stem", "block", "head")
    assert first_divergence(trace("stem", "head"), python, BIT_IDENTICAL) == (
        "first divergence: the ruby trace has no output for module block")
    assert first_divergence({**python, "extra": python["head"]}, python, BIT_IDENTICAL) == (
        "first divergence: the python trace has no output for module extra")


def test_says_when_every_output_agrees():
    python = trace("stem", "head")
    assert first_divergence(dict(python), python, BIT_IDENTICAL, "the loss differs") == (
        "first divergence: every traced module output agrees, so the loss differs")
