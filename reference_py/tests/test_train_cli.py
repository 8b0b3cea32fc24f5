"""train.py end to end on the tiny set, and where its weights come from."""

import json
from pathlib import Path

import torch
from PIL import Image

from reference_py.model import resnet18_with_head
from reference_py.pretrained import load_or_make
from reference_py.tensor_io import read_bundle
from reference_py.tests.helpers import run_cli
from reference_py.train import load_backbone

# The runs load in the trainer's own process (--workers 0): what they check is the same at any worker count, and at
# the default 4 each split of each epoch forked 4 workers from the trainer, whose page faults were half of a run's CPU.
# train.py at its default workers is parity/test_free_running.py's finetune run; the loaders at 0, 2 and 4 workers,
# batch for batch, are parity/test_data_loader.py's.
CURVES_KEYS = {"side", "strategy", "weights", "data", "seed", "threads", "stack", "epochs", "best_epoch", "best_acc",
               "data_order", "seconds"}


def test_train_writes_curves_weights_and_pictures(tiny_data, net_pth, tmp_path):
    completed = run_cli("train.py", "--strategy", "feature_extractor", "--epochs", "2", "--step-size", "1",
                        "--data-dir", tiny_data, "--weights", net_pth, "--seed", "3", "--workers", "0", "--out-dir", tmp_path / "out",
                        cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[:2] == ["Epoch 0/1", "----------"] and lines[-1].startswith("Best val Acc: ")
    assert "stand-in weights (sha256" in completed.stderr
    out = tmp_path / "out" / "feature_extractor"
    written = ["best.pth", "config.json", "curves.json", "curves.png", "predictions.png", "train_grid.png"]
    assert sorted(p.name for p in out.iterdir()) == [".hymenoptera-output.json", *written]
    assert json.loads((out / ".hymenoptera-output.json").read_text()) == {"tool": "train", "files": written}
    config = json.loads((out / "config.json").read_text())
    assert (config["strategy"], config["epochs"], config["step_size"], config["seed"]) == ("feature_extractor", 2, 1, 3)
    assert (config["gamma"], config["momentum"], config["record"]) == (0.1, 0.9, False)
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


def test_the_data_line_says_what_the_ruby_port_says():
    """The trainers' `data:` line, in train.rb's words too (ruby_port/test/train_test.rb holds the same lines)."""
    from reference_py.data import describe

    sizes = {"train": 4, "val": 3}
    assert (describe(Path("data/x"), True, sizes, ["ants", "bees"])
            == "data/x (generated stand-in, NOT the real hymenoptera_data; 4 train, 3 val; classes ants, bees)")
    assert describe(Path("data/x"), False, sizes, ["ants", "bees", "wasps"]) == (
        "data/x (images; 4 train, 3 val; classes ants, bees, wasps)")


def test_print_config_shows_every_default_and_trains_nothing(tmp_path):
    completed = run_cli("train.py", "--print-config", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = json.loads(completed.stdout)
    assert config == {"backbone_lr": 1e-4, "batch_size": 4, "data_dir": None, "epochs": 25, "gamma": 0.1,
                      "head_lr": 1e-3, "lr": 0.001, "momentum": 0.9, "out_dir": "runs/train/python", "progress": True,
                      "record": False, "seed": 0, "step_size": 7, "strategy": "finetune",
                      "threads": config["threads"], "weights": "net.pth", "workers": 4}
    assert list(tmp_path.iterdir()) == []


def test_record_writes_the_steps_of_a_free_run(tiny_data, net_pth, tmp_path):
    completed = run_cli("train.py", "--strategy", "finetune", "--epochs", "2", "--data-dir", tiny_data,
                        "--weights", net_pth, "--out-dir", tmp_path / "out", "--no-progress", "--record", "--workers", "0", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    record = tmp_path / "out" / "finetune" / "record"
    steps = read_bundle(record / "step_losses")["step_losses"]
    assert steps.shape == (2, 2)  # 2 epochs of 8 images in batches of 4
    first = read_bundle(record / "first_batch")
    assert first["inputs"].shape == (4, 3, 224, 224) and first["labels"].shape == (4,)
    grads, momentum = read_bundle(record / "grads_step1"), read_bundle(record / "momentum_step1")
    assert list(grads) == list(momentum) and len(grads) == 62  # every parameter of ResNet-18 trains
    assert all(torch.equal(grads[name], momentum[name]) for name in grads)  # SGD's first buffer is the gradient
    assert list(read_bundle(record / "momentum_last")) == list(grads)
    best = torch.load(tmp_path / "out" / "finetune" / "best.pth", weights_only=True)
    recorded = read_bundle(record / "best_state")
    assert list(recorded) == list(best) and all(torch.equal(recorded[k], best[k]) for k in best)


def test_scratch_needs_no_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_backbone("scratch", None) is None
    assert list(tmp_path.iterdir()) == []


def test_missing_default_weights_are_made(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    weights = load_or_make(None, default=tmp_path / "net.pth")
    assert weights.provenance == "stand-in" and (tmp_path / "net.pth.json").exists()
