"""The writers' lock and signals_held: a signal that lands as the lock is taken leaves no lock file, and a
held signal takes effect when its block ends (the twin: ruby_port/test/lock_test.rb)."""

import signal

import pytest

from reference_py import lock, output_claim


def test_a_signal_as_the_lock_is_taken_leaves_no_lock_file(tmp_path, sigterm_exits, monkeypatch):
    """SIGTERM right after the lock file is made and flocked, before the lock knows it holds it."""
    samestat = lock.os.path.samestat

    def signalled(*args):
        signal.raise_signal(signal.SIGTERM)
        return samestat(*args)
    monkeypatch.setattr(lock.os.path, "samestat", signalled)
    with pytest.raises(SystemExit):
        with output_claim.OutputDir(tmp_path / "scratch", "train", "--out"):
            pytest.fail("the signal should have ended the run before the block")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_held_signal_takes_effect_when_the_block_ends(sigterm_exits):
    reached = []
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        with lock.signals_held():
            signal.raise_signal(signal.SIGTERM)
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGTERM) is handler
