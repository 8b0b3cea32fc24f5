"""A signal that lands the moment a temporary output is made must not leak it, and what a killed run left is
tidied by its name alone (the twin: ruby_port/test/atomic_test.rb)."""

import json
import signal

import pytest

from reference_py import atomic


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
    return {"OutputDir.write": lambda: atomic.OutputDir(target, "train", "--out").write(),
            "atomic_path": lambda: atomic.atomic_path(target)}


@pytest.mark.parametrize("writer", ["OutputDir.write", "atomic_path"])
def test_a_signal_as_the_temporary_entry_is_made_leaves_nothing(writer, tmp_path, sigterm_exits, sigterm_on_creation):
    target = tmp_path / "scratch"
    open_writer = writers(target)[writer]
    with pytest.raises(SystemExit):
        with open_writer():
            pytest.fail("the signal should have ended the run before the block")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_runs_leftovers_are_tidied_by_name_and_nothing_else(tmp_path, capsys):
    """Killed while writing (.NAME.<12 hex>.tmp: half a result, no marker yet) and between the two renames of a
    swap (.NAME.<12 hex>.old, the earlier result; NAME missing): the next run removes the one and restores the
    other, whatever they hold. Names that only resemble them (a user's backup, an empty folder) stay as they were."""
    target = tmp_path / "scratch"
    half = tmp_path / ".scratch.0123456789ab.tmp"
    half.mkdir()
    (half / "curves.json").write_text('{"train_loss": [0.')
    earlier = tmp_path / ".scratch.ba9876543210.old"
    earlier.mkdir()
    (earlier / "curves.json").write_text("[]")
    (earlier / atomic.MARKER).write_text(json.dumps({"tool": "train", "files": ["curves.json"]}))
    others = [".scratch.old", ".scratch.backup.tmp", ".scratch.1234abcd.tmp", ".scratch.0123456789AB.tmp",
              ".scratch.0123456789ab.tmp.keep"]
    for name in others:
        (tmp_path / name).mkdir()
    (tmp_path / ".scratch.old" / "notes.txt").write_text("the user's backup")

    with atomic.OutputDir(target, "train", "--out-dir", signature="curves.json"):
        pass

    assert (target / "curves.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + ["scratch"])
    assert (tmp_path / ".scratch.old" / "notes.txt").read_text() == "the user's backup"
    assert all(not any((tmp_path / name).iterdir()) for name in others[1:])
    assert capsys.readouterr().err.splitlines() == [
        f"train: removed {half}, left by an interrupted run",
        f"train: restored {target} from {earlier}, left by a run interrupted while replacing it"]


def test_an_old_beside_a_present_target_and_a_files_temporary_are_removed_by_name(tmp_path, capsys):
    target = tmp_path / "scratch"
    target.mkdir()
    (target / atomic.MARKER).write_text(json.dumps({"tool": "train", "files": []}))
    earlier = tmp_path / ".scratch.00000000000f.old"
    earlier.mkdir()
    (earlier / "curves.json").write_text("[]")
    half_file = tmp_path / ".net.pth.00000000000e.tmp"
    half_file.write_bytes(b"PK")
    mine = tmp_path / ".net.pth.mine.tmp"
    mine.write_bytes(b"the user's")

    with atomic.OutputDir(target, "train", "--out-dir"):
        pass
    with atomic.OutputFile(tmp_path / "net.pth", "pretrained", "--out", lambda _: True):
        pass

    assert sorted(p.name for p in tmp_path.iterdir()) == [".net.pth.mine.tmp", "scratch"]
    assert mine.read_bytes() == b"the user's"
    assert capsys.readouterr().err.splitlines() == [f"train: removed {earlier}, left by an interrupted run",
                                                     f"pretrained: removed {half_file}, left by an interrupted run"]


def test_a_folder_it_may_not_write_in_is_refused_with_the_fix(tmp_path, monkeypatch):
    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(atomic.os, "open", refused)
    with pytest.raises(atomic.UserError) as error:
        atomic.OutputDir(tmp_path / "scratch", "train", "--out-dir").claim()
    assert str(error.value) == (f"{tmp_path} is not writable (Permission denied); make it writable or choose another "
                                f"--out-dir")


def test_inside_resolves_links_and_paths_that_do_not_exist_yet(tmp_path, monkeypatch):
    """What train's --out-dir check asks (the twin: ruby_port/test/atomic_test.rb's)."""
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "train")
    monkeypatch.chdir(tmp_path)
    assert atomic.inside("data", "data") and atomic.inside("data/train/ants/new", tmp_path / "data")
    assert atomic.inside("link/ants", "data") and atomic.inside("data/../data/x", "data")
    assert not atomic.inside("data2", "data") and not atomic.inside(".", "data") and not atomic.inside("data", "data/train")
    assert atomic.real_path("link/new/../x") == str(tmp_path.resolve() / "data" / "train" / "x")
