"""HYMENOPTERA_THREADS is read alike on both sides (the twin: ruby_port/test/bad_inputs_test.rb)."""

import os

import pytest

from reference_py import threads


@pytest.mark.parametrize("value", ["two", "0", "01", "²", "١", "1_0", " 2", str(threads.PER_CORE_MAX * (os.cpu_count() or 1) + 1),
                                   "10000", "9" * 5000])
def test_a_setting_that_is_not_1_to_4_per_core_is_refused_in_one_line(value, monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, value)
    with pytest.raises(threads.SettingError) as refused:
        threads.thread_count()
    most = threads.PER_CORE_MAX * (os.cpu_count() or 1)
    assert f"expected a whole number of threads from 1 to {most}" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("value", ["1", str(threads.PER_CORE_MAX * (os.cpu_count() or 1))])
def test_a_setting_from_1_to_4_per_core_is_taken(value, monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, value)
    assert threads.thread_count() == int(value)


@pytest.mark.parametrize("value,shown", [(" 2", '" 2"'), ("٢", '"٢"'), ("two", '"two"')])
def test_the_refused_setting_is_shown_as_ruby_shows_it(value, shown, monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, value)  # Python's repr quoted ' 2' where Ruby's twin says " 2"
    with pytest.raises(threads.SettingError) as refused:
        threads.thread_count()
    assert str(refused.value).startswith(f"{threads.ENV_VAR}={shown}: ")
