"""train.py end to end on the tiny set, and where its weights come from."""

import json

import torch
from PIL import Image

from reference_py.model import resnet18_with_head
from reference_py.pretrained import load_or_make
from reference_py.tests.helpers import run_cli
from reference_py.train import load_backbone

CURVES_KEYS = {"side", "strategy", "weights", "data", "seed", "threads", "epochs", "best_epoch", "best_acc",
               "data_order", "seconds"}


def test_train_writes_curves_weights_and_pictures(tiny_data, net_pth, tmp_path):
    completed = run_cli("train.py", "--strategy", "feature_extractor", "--epochs", "2", "--step-size", "1",
                        "--data-dir", tiny_data, "--weights", net_pth, "--seed", "3", "--out-dir", tmp_path / "out",
                        cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[:2] == ["Epoch 0/1", "----------"] and lines[-1].startswith("Best val Acc: ")
    assert "stand-in weights (sha256" in completed.stderr
    out = tmp_path / "out" / "feature_extractor"
    assert sorted(p.name for p in out.iterdir()) == ["best.pth", "curves.json", "curves.png", "predictions.png",
                                                     "train_grid.png"]
    curves = json.loads((out / "curves.json").read_text())
    assert set(curves) == CURVES_KEYS
    assert (curves["side"], curves["strategy"], curves["seed"]) == ("python", "feature_extractor", 3)
    assert curves["weights"]["provenance"] == "stand-in" and curves["weights"]["path"] == str(net_pth)
    assert curves["data"] == {"dir": str(tiny_data), "standin": True}
    assert [e["lr"] for e in curves["epochs"]] == [[0.001], [0.001 * 0.1]]
    assert len(curves["data_order"]["train"]) == 2
    assert all(sorted(order) == list(range(8)) for order in curves["data_order"]["train"])
    assert curves["data_order"]["train"][0] != curves["data_order"]["train"][1]
    val_accs = [e["val_acc"] for e in curves["epochs"]]
    assert curves["best_acc"] == max(val_accs) and curves["best_epoch"] == val_accs.index(max(val_accs))
    model = resnet18_with_head()
    model.load_state_dict(torch.load(out / "best.pth", weights_only=True))
    for picture in ("curves.png", "predictions.png", "train_grid.png"):
        with Image.open(out / picture) as image:
            assert image.format == "PNG" and min(image.size) > 100
    assert not (tmp_path / "net.pth").exists()  # --weights given: nothing made in the working folder


def test_scratch_needs_no_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_backbone("scratch", None) is None
    assert list(tmp_path.iterdir()) == []


def test_missing_default_weights_are_made(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    weights = load_or_make(None, default=tmp_path / "net.pth")
    assert weights.provenance == "stand-in" and (tmp_path / "net.pth.json").exists()
