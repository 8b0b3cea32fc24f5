"""A signal that lands the moment a temporary output is made must not leak it, whether a file or a claimed
folder is written (the twin: ruby_port/test/atomic_test.rb)."""

import signal

import pytest

from reference_py import atomic, output_claim


@pytest.fixture
def sigterm_on_creation(monkeypatch):
    """SIGTERM sent to this process right after the temporary entry exists, before its maker returns."""
    def signalled(make):
        def made(*args, **kwargs):
            result = make(*args, **kwargs)
            signal.raise_signal(signal.SIGTERM)
            return result
        return made
    monkeypatch.setattr(atomic, "make_temporary", signalled(atomic.make_temporary))


def writers(target):
    return {"OutputDir.write": lambda: output_claim.OutputDir(target, "train", "--out").write(),
            "atomic_path": lambda: atomic.atomic_path(target)}


@pytest.mark.parametrize("writer", ["OutputDir.write", "atomic_path"])
def test_a_signal_as_the_temporary_entry_is_made_leaves_nothing(writer, tmp_path, sigterm_exits, sigterm_on_creation):
    target = tmp_path / "scratch"
    open_writer = writers(target)[writer]
    with pytest.raises(SystemExit):
        with open_writer():
            pytest.fail("the signal should have ended the run before the block")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
