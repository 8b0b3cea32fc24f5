"""The zoo's waits for the other side: a long one says once what it waits for, and each gives up at its timeout."""

import pytest

from reference_py import zoo


def test_a_long_wait_says_once_what_it_waits_for(capsys):
    with pytest.raises(TimeoutError, match="waited 0.4 s for the stand-in"):
        zoo.wait_for(lambda: False, "the stand-in", timeout=0.4, notice=0.1)
    assert capsys.readouterr().err.splitlines() == ["zoo: waiting for the stand-in"]


def test_a_short_wait_says_nothing(capsys):
    answers = iter([False, False, True])
    zoo.wait_for(lambda: next(answers), "the stand-in", notice=10)
    assert capsys.readouterr().err == ""
