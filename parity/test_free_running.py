"""Free-running parity: the trainers users run (`reference_py/train.py`, `ruby_port/bin/train`), each
with its own pipeline from the image files (decoding, resampling, shuffling, augmentation), same flags.

Every strategy trains EPOCHS epochs with a StepLR decay inside the run, on a small set made by the
stand-in generator (with its grayscale, CMYK and palette files). On one stack everything must be
bit-identical: the data order, the first batch as it entered the model, every step's loss, every
epoch's metrics and learning rates, the first gradients, the SGD momentum buffers after the first
step and at the end, the best epoch and the best weights.
"""

import json
from pathlib import Path

import pytest
import torch

from parity import data_paths
from parity.compare import check, measure, measure_dict
from parity.runs import same_stack
from parity.early import started, starts_early
from parity.settings import ALL_STRATEGIES, PYTHON_FREE_RUNS, ROOT, RUNS, STRATEGIES
from parity.sides import python, ruby, start_together
from parity.tolerances import for_quantity
from reference_py import standin_data
from reference_py.data import check_layout, image_files
from reference_py.pretrained import ensure_net
from reference_py.tensor_io import read_bundle

EPOCHS = 3
STEP_SIZE = 2  # the learning rate decays after epoch 1, inside the run
SEED = 0
# Images per class, unequal and ending on a partial batch in both splits, as hymenoptera_data (ants/bees
# train 124/120, val 70/83); indices 1, 2, 3 of a class are its grayscale, CMYK and palette files. With
# SEED, some strategies' val accuracy ties and their best epoch is not the last (checked by
# test_the_data_takes_every_path_the_real_data_takes).
DATA_COUNTS = {"train": {"ants": 4, "bees": 3}, "val": {"ants": 2, "bees": 3}}
FREE_RUNS = RUNS / "free"  # both trainers' out-dirs and their data


class FreeRun:
    """What one side's trainer wrote for one strategy: curves.json, best.pth and the record/ bundles."""

    def __init__(self, folder):
        self.folder = folder
        self.curves = json.loads((folder / "curves.json").read_text())

    def record(self, name):
        return read_bundle(self.folder / "record" / name)

    def best_weights(self):
        """best.pth's tensors as the trainer recorded them (torch.rb's .pth needs an unsafe load in Python)."""
        return self.record("best_state")


def free_run_commands(out, data_dir, strategies=STRATEGIES, sides=("python", "ruby")):
    """The trainers of `sides`, each strategy, into out/SIDE/STRATEGY, on the small set at data_dir."""
    weights = ensure_net(ROOT / "net.pth")
    common = ["--epochs", EPOCHS, "--step-size", STEP_SIZE, "--seed", SEED, "--data-dir", data_dir,
              "--weights", weights, "--no-progress", "--record"]
    trainers = {"python": lambda strategy: python("train.py", "--strategy", strategy, *common, "--out-dir", out / "python"),
                "ruby": lambda strategy: ruby("train", "--strategy", strategy, *common, "--out-dir", out / "ruby")}
    return [trainers[side](strategy) for strategy in strategies for side in sides]


def free_data(out):
    """The small set, made in out/data when missing."""
    return standin_data.ensure_standin(out / "data", seed=SEED, counts=DATA_COUNTS)


@starts_early("free_runs")
def start_free_runs(_session, background):
    """Both trainers, every strategy, all at once; the Ruby side alone when PARITY_PYTHON_FREE_RUNS holds the
    Python side's (free_run_commands' python/ and data/), on that same set."""
    if PYTHON_FREE_RUNS:
        return start_together(*free_run_commands(FREE_RUNS, PYTHON_FREE_RUNS / "data", sides=("ruby",)),
                              background=background)
    return start_together(*free_run_commands(FREE_RUNS, free_data(FREE_RUNS)), background=background)


@pytest.fixture(scope="module")
def free_runs(request):
    started("free_runs", request.session).wait()
    python_out = PYTHON_FREE_RUNS or FREE_RUNS
    return {strategy: (FreeRun(FREE_RUNS / "ruby" / strategy), FreeRun(python_out / "python" / strategy))
            for strategy in STRATEGIES}


@pytest.fixture(scope="module")
def on_one_stack(free_runs):
    """Both trainers ran here; bit-identical is expected when they report the same LibTorch and threads."""
    ruby, python = next(iter(free_runs.values()))
    return same_stack(python.curves["stack"], ruby.curves["stack"])


def test_data_order(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    orders = [(torch.tensor(r), torch.tensor(p)) for r, p in
              zip(ruby.curves["data_order"]["train"], python.curves["data_order"]["train"])]
    assert len(orders) == EPOCHS, f"epochs with a recorded order: {len(orders)}, expected {EPOCHS}"
    check([measure(r, p, quantity="free-running training order", tolerance=for_quantity("counts", on_one_stack),
                   strategy=strategy, epoch=epoch) for epoch, (r, p) in enumerate(orders)], recorder)


def test_first_batch_as_it_entered_the_model(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    check(measure_dict(ruby.record("first_batch"), python.record("first_batch"),
                       quantity="free-running first batch (decoded, cropped, resampled, flipped, normalized)",
                       tolerance=for_quantity("inputs", on_one_stack), strategy=strategy), recorder)


def test_every_step_loss(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    check(measure(ruby.record("step_losses")["step_losses"], python.record("step_losses")["step_losses"],
                  quantity="free-running training loss per step [epoch, step]",
                  tolerance=for_quantity("loss", on_one_stack), strategy=strategy), recorder)


def test_epoch_curves(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    ruby_epochs, python_epochs = ruby.curves["epochs"], python.curves["epochs"]
    assert len(ruby_epochs) == len(python_epochs) == EPOCHS, (
        f"epochs run: ruby {len(ruby_epochs)}, python {len(python_epochs)}, expected {EPOCHS}")
    assert python_epochs[-1]["lr"][0] < python_epochs[0]["lr"][0], "the run must include a StepLR decay"
    comparisons = []
    for r, p in zip(ruby_epochs, python_epochs):
        comparisons.append(measure(torch.tensor(r["lr"], dtype=torch.float64), torch.tensor(p["lr"], dtype=torch.float64),
                                   quantity="free-running learning rate", strategy=strategy, epoch=p["epoch"],
                                   tolerance=for_quantity("lr", on_one_stack)))
        for metric in ("train_loss", "train_acc", "val_loss", "val_acc"):
            comparisons.append(measure(torch.tensor(r[metric], dtype=torch.float64),
                                       torch.tensor(p[metric], dtype=torch.float64),
                                       quantity=f"free-running {metric}", strategy=strategy, epoch=p["epoch"],
                                       tolerance=for_quantity("metrics", on_one_stack)))
    check(comparisons, recorder)


def test_first_gradients_and_momentum(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    comparisons = measure_dict(ruby.record("grads_step1"), python.record("grads_step1"),
                               quantity="free-running gradient after the first backward", strategy=strategy,
                               tolerance=for_quantity("gradients", on_one_stack))
    for bundle, when in (("momentum_step1", "after the first step"), ("momentum_last", "at the end")):
        assert python.record(bundle), f"the Python trainer recorded no momentum buffer {when} [{strategy}]"
        comparisons += measure_dict(ruby.record(bundle), python.record(bundle), strategy=strategy,
                                    quantity=f"free-running SGD momentum buffer {when}",
                                    tolerance=for_quantity("momentum", on_one_stack))
    check(comparisons, recorder)


def test_best_epoch_and_weights(strategy, free_runs, on_one_stack, recorder):
    ruby, python = free_runs[strategy]
    comparisons = [
        measure(torch.tensor(-1 if ruby.curves["best_epoch"] is None else ruby.curves["best_epoch"]),
                torch.tensor(-1 if python.curves["best_epoch"] is None else python.curves["best_epoch"]),
                quantity="free-running best epoch (-1: none)", strategy=strategy,
                tolerance=for_quantity("counts", on_one_stack)),
        measure(torch.tensor(ruby.curves["best_acc"], dtype=torch.float64),
                torch.tensor(python.curves["best_acc"], dtype=torch.float64),
                quantity="free-running best val accuracy", strategy=strategy,
                tolerance=for_quantity("metrics", on_one_stack)),
    ]
    comparisons += measure_dict(ruby.best_weights(), python.best_weights(), quantity="free-running best weights",
                                strategy=strategy, tolerance=for_quantity("state", on_one_stack))
    check(comparisons, recorder)


def test_the_data_takes_every_path_the_real_data_takes(free_runs):
    """A partial last batch in both splits, unequal classes, a tie in val accuracy, a best epoch before the
    last (parity/data_paths.py), read from what the reference's runs record: their data dir, batch size
    and curves."""
    python_runs = {strategy: python for strategy, (_, python) in free_runs.items()}
    first = next(iter(python_runs.values()))
    data_dir = Path(first.curves["data"]["dir"])
    class_counts = {split: [len(image_files(data_dir / split / name)) for name in check_layout(data_dir)]
                    for split in data_paths.SPLITS}
    batch_size = json.loads((first.folder / "config.json").read_text())["batch_size"]
    taken = data_paths.paths_taken(class_counts, batch_size, {s: run.curves for s, run in python_runs.items()})
    data_paths.check_every_path_taken(taken, "the free-running data", "change DATA_COUNTS, SEED or EPOCHS in "
                                      "parity/test_free_running.py until it does", STRATEGIES == ALL_STRATEGIES)
