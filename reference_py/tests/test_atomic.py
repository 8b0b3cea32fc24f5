"""A signal that lands the moment a temporary output is made must not leak it (the twin: ruby_port/test/atomic_test.rb)."""

import signal
import tempfile

import pytest

from reference_py import atomic


@pytest.fixture
def sigterm_exits():
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(SystemExit(143)))
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def sigterm_on_creation(monkeypatch):
    """SIGTERM sent to this process right after the temporary entry exists, before its maker returns."""
    def signalled(make):
        def made(*args, **kwargs):
            result = make(*args, **kwargs)
            signal.raise_signal(signal.SIGTERM)
            return result
        return made
    monkeypatch.setattr(tempfile, "mkdtemp", signalled(tempfile.mkdtemp))
    monkeypatch.setattr(tempfile, "mkstemp", signalled(tempfile.mkstemp))


def writers(target):
    return {"OutputDir.write": lambda: atomic.OutputDir(target, "train", "--out").write(),
            "atomic_dir": lambda: atomic.atomic_dir(target),
            "atomic_path": lambda: atomic.atomic_path(target)}


@pytest.mark.parametrize("writer", ["OutputDir.write", "atomic_dir", "atomic_path"])
def test_a_signal_as_the_temporary_entry_is_made_leaves_nothing(writer, tmp_path, sigterm_exits, sigterm_on_creation):
    target = tmp_path / "scratch"
    open_writer = writers(target)[writer]
    with pytest.raises(SystemExit):
        with open_writer():
            pytest.fail("the signal should have ended the run before the block")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_held_signal_takes_effect_when_the_block_ends(sigterm_exits):
    reached = []
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        with atomic.signals_held():
            signal.raise_signal(signal.SIGTERM)
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGTERM) is handler
