"""replay.py on the small fixtures: the run directory of fixtures/README.md and its internal consistency."""

import hashlib
import json

import pytest
import torch

from reference_py.model import FORWARD_ORDER
from reference_py.strategies import RESNET18_STRATEGIES
from reference_py.tensor_io import read_bundle
from reference_py.tests.helpers import run_cli

BUNDLES = ["eval_logits", "trace_eval", "trace_train", "step_losses", "grads_step1", "state_epoch_0",
           "state_epoch_1", "state_best"]


@pytest.fixture(scope="module")
def run(small_fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "python"
    completed = run_cli("replay.py", "--fixtures", small_fixtures, "--out", out)
    assert completed.returncode == 0, completed.stderr
    assert "stand-in weights (sha256" in completed.stderr
    return out


def summary(run, strategy):
    return json.loads((run / strategy / "summary.json").read_text())


def test_run_json(run, small_fixtures):
    info = json.loads((run / "run.json").read_text())
    assert info["side"] == "python" and info["torch"] == torch.__version__
    assert {"python", "torchvision", "libtorch", "threads"} <= set(info)
    assert info["strategies"] == list(RESNET18_STRATEGIES)
    manifest_bytes = (small_fixtures / "manifest.json").read_bytes()
    assert info["fixtures_manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert info["weights"] == {k: json.loads(manifest_bytes)["weights"][k] for k in ("provenance", "sha256")}
    assert sorted(p.name for p in run.parent.iterdir()) == ["python"]  # no temporary folder left


@pytest.mark.parametrize("strategy", RESNET18_STRATEGIES)
def test_strategy_outputs(run, small_fixtures, strategy):
    for name in BUNDLES:
        assert (run / strategy / f"{name}.json").exists()
    result = summary(run, strategy)
    assert set(result) == {"strategy", "epochs", "best_epoch", "best_acc", "eval_predictions", "param_counts"}
    assert [e["epoch"] for e in result["epochs"]] == [0, 1]
    assert all(set(e) == {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"} for e in result["epochs"])
    logits = read_bundle(run / strategy / "eval_logits")["logits"]
    assert logits.shape == (4, 2)
    assert result["eval_predictions"] == logits.argmax(1).tolist()
    trace_eval = read_bundle(run / strategy / "trace_eval")
    assert list(trace_eval) == list(FORWARD_ORDER)
    assert torch.allclose(trace_eval["fc"], logits[:4], atol=1e-5)  # the written-out forward is ResNet's
    assert list(read_bundle(run / strategy / "trace_train")) == list(FORWARD_ORDER)
    assert read_bundle(run / strategy / "step_losses")["step_losses"].shape == (2, 2)  # 6 images: batches 4, 2
    best_epoch = result["best_epoch"]
    best = read_bundle(run / strategy / "state_best")
    reference = read_bundle(run / strategy / f"state_epoch_{best_epoch}") if best_epoch is not None else None
    if reference is not None:
        assert all(torch.equal(best[k], reference[k]) for k in best)
        assert result["best_acc"] == max(e["val_acc"] for e in result["epochs"])


def test_learning_rates_follow_step_lr(run):
    def lrs(strategy):
        return [lr for epoch in summary(run, strategy)["epochs"] for lr in epoch["lr"]]

    assert lrs("finetune") == pytest.approx([1e-3, 1e-4])  # [epoch 0, epoch 1]
    assert lrs("backbone_lr") == pytest.approx([1e-4, 1e-3, 1e-5, 1e-4])  # [backbone, head] per epoch


def test_feature_extractor_trains_only_the_head(run, small_fixtures):
    grads = read_bundle(run / "feature_extractor" / "grads_step1")
    assert list(grads) == ["fc.weight", "fc.bias"]
    counts = summary(run, "feature_extractor")["param_counts"]
    assert counts == {"trainable": 512 * 2 + 2, "frozen": counts["total"] - 1026, "total": 11177538}
    weights = read_bundle(small_fixtures / "weights")
    final = read_bundle(run / "feature_extractor" / "state_epoch_1")
    assert torch.equal(final["layer4.1.conv2.weight"], weights["layer4.1.conv2.weight"])
    initial = read_bundle(small_fixtures / "strategies/feature_extractor/initial")
    assert not torch.equal(final["fc.weight"], initial["fc.weight"])


def test_finetune_trains_everything_and_scratch_starts_from_its_initial(run, small_fixtures):
    assert len(read_bundle(run / "finetune" / "grads_step1")) == 62
    weights = read_bundle(small_fixtures / "weights")
    assert not torch.equal(read_bundle(run / "finetune" / "state_epoch_0")["conv1.weight"], weights["conv1.weight"])
    scratch_trace = read_bundle(run / "scratch" / "trace_eval")
    scratch_initial = read_bundle(small_fixtures / "strategies/scratch/initial")
    evaluation = read_bundle(small_fixtures / "eval")
    first_conv = torch.nn.functional.conv2d(evaluation["images"][:4], scratch_initial["conv1.weight"], stride=2,
                                            padding=3)
    assert torch.allclose(scratch_trace["conv1"], first_conv, atol=1e-5)
