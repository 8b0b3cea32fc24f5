"""What a killed run left beside an output is tidied by its name alone, a folder the run may not write in is
refused with the fix, and train's --out-dir check sees through links (the twin:
ruby_port/test/output_claim_test.rb)."""

import json
import os

import pytest

from reference_py import output_claim


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
    (earlier / output_claim.MARKER).write_text(json.dumps({"tool": "train", "files": ["curves.json"]}))
    others = [".scratch.old", ".scratch.backup.tmp", ".scratch.1234abcd.tmp", ".scratch.0123456789AB.tmp",
              ".scratch.0123456789ab.tmp.keep"]
    for name in others:
        (tmp_path / name).mkdir()
    (tmp_path / ".scratch.old" / "notes.txt").write_text("the user's backup")

    with output_claim.OutputDir(target, "train", "--out-dir", signature="curves.json"):
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
    (target / output_claim.MARKER).write_text(json.dumps({"tool": "train", "files": []}))
    earlier = tmp_path / ".scratch.00000000000f.old"
    earlier.mkdir()
    (earlier / "curves.json").write_text("[]")
    half_file = tmp_path / ".net.pth.00000000000e.tmp"
    half_file.write_bytes(b"PK")
    mine = tmp_path / ".net.pth.mine.tmp"
    mine.write_bytes(b"the user's")

    with output_claim.OutputDir(target, "train", "--out-dir"):
        pass
    with output_claim.OutputFile(tmp_path / "net.pth", "pretrained", "--out", lambda _: True):
        pass

    assert sorted(p.name for p in tmp_path.iterdir()) == [".net.pth.mine.tmp", "scratch"]
    assert mine.read_bytes() == b"the user's"
    assert capsys.readouterr().err.splitlines() == [f"train: removed {earlier}, left by an interrupted run",
                                                     f"pretrained: removed {half_file}, left by an interrupted run"]


def test_a_folder_it_may_not_write_in_is_refused_with_the_fix(tmp_path, monkeypatch):
    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(output_claim.os, "open", refused)
    with pytest.raises(output_claim.UserError) as error:
        output_claim.OutputDir(tmp_path / "scratch", "train", "--out-dir").claim()
    assert str(error.value) == (f"{tmp_path} is not writable (Permission denied); make it writable or choose another "
                                f"--out-dir")


def test_a_parent_folder_another_run_makes_meanwhile_is_shared_and_left_to_it(tmp_path, monkeypatch):
    """Two runs started at once into a new folder: the one whose mkdir comes second goes on in the folder
    the other made, and does not take it away when it ends."""
    parent = tmp_path / "runs"
    mkdir = output_claim.Path.mkdir

    def raced(path, *args, **kwargs):
        if path == parent:
            mkdir(path)  # the other run's, between this one's check and its mkdir
        mkdir(path, *args, **kwargs)
    monkeypatch.setattr(output_claim.Path, "mkdir", raced)
    claim = output_claim.OutputDir(parent / "python", "train", "--out-dir")
    claim.claim()
    claim.release()
    assert parent.is_dir()


def test_a_parent_folder_another_run_makes_right_after_this_one_looked_is_shared(tmp_path, monkeypatch):
    """The other run's mkdir comes just after this one first looked for the folder and found none."""
    parent = tmp_path / "runs"
    look = output_claim.Path.stat

    def raced(path, *args, **kwargs):
        if path == parent and not os.path.exists(parent):
            os.mkdir(parent)  # the other run's, right after this one's look
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return look(path, *args, **kwargs)
    monkeypatch.setattr(output_claim.Path, "stat", raced)
    claim = output_claim.OutputDir(parent / "python", "train", "--out-dir")
    claim.claim()
    claim.release()
    assert parent.is_dir()


def test_inside_resolves_links_and_paths_that_do_not_exist_yet(tmp_path, monkeypatch):
    """What train's --out-dir check asks (the twin: ruby_port/test/output_claim_test.rb's)."""
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "train")
    monkeypatch.chdir(tmp_path)
    assert output_claim.inside("data", "data") and output_claim.inside("data/train/ants/new", tmp_path / "data")
    assert output_claim.inside("link/ants", "data") and output_claim.inside("data/../data/x", "data")
    assert not output_claim.inside("data2", "data") and not output_claim.inside(".", "data") and not output_claim.inside("data", "data/train")
    assert output_claim.real_path("link/new/../x") == str(tmp_path.resolve() / "data" / "train" / "x")
