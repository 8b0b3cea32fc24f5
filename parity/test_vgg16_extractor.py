"""VGG-16 as a fixed feature extractor (strategy vgg16_feature_extractor), free-running: both trainers,
same flags, each with its own pipeline, on the same small stand-in set as parity/test_free_running.py, and
held to the same comparisons (its test functions, run for this strategy): the data order, the first batch,
every step's loss, every epoch's curves, the first gradients and momentum buffers, the best weights.

VGG-16 at 224x224 costs about twelve times ResNet-18's forward pass, so this runs with the zoo (extended),
not in the core `pytest parity`. Its stand-in weights (553 MB, reference_py/pretrained.py --arch vgg16)
are made in a temporary directory and deleted afterwards.
"""

import shutil

import pytest

from parity import test_free_running as free
from parity.runs import same_stack
from parity.settings import RUNS
from parity.sides import python, ruby, run_together
from reference_py import standin_data
from reference_py.pretrained import ensure_net

pytestmark = [pytest.mark.extended, pytest.mark.zoo]

STRATEGY = "vgg16_feature_extractor"
CHECKS = ["test_data_order", "test_first_batch_as_it_entered_the_model", "test_every_step_loss", "test_epoch_curves",
          "test_first_gradients_and_momentum", "test_best_epoch_and_weights"]


@pytest.fixture(scope="module")
def vgg16_runs(tmp_path_factory):
    out = RUNS / "free_vgg16"
    weights_dir = tmp_path_factory.mktemp("vgg16_weights")
    try:
        weights = ensure_net(weights_dir / "vgg16.pth", seed=free.SEED, arch="vgg16")
        data_dir = standin_data.ensure_standin(out / "data", seed=free.SEED, counts=free.DATA_COUNTS)
        common = ["--strategy", STRATEGY, "--epochs", free.EPOCHS, "--step-size", free.STEP_SIZE, "--seed", free.SEED,
                  "--data-dir", data_dir, "--weights", weights, "--no-progress", "--record"]
        run_together(python("train.py", *common, "--out-dir", out / "python"),
                     ruby("train", *common, "--out-dir", out / "ruby"))
    finally:
        shutil.rmtree(weights_dir, ignore_errors=True)
    return {STRATEGY: (free.FreeRun(out / "ruby" / STRATEGY), free.FreeRun(out / "python" / STRATEGY))}


@pytest.mark.parametrize("check_name", CHECKS)
def test_vgg16_extractor_free_running(check_name, vgg16_runs, recorder):
    ruby_run, python_run = vgg16_runs[STRATEGY]
    assert python_run.curves["strategy"] == STRATEGY
    getattr(free, check_name)(STRATEGY, vgg16_runs, same_stack(python_run.curves["stack"], ruby_run.curves["stack"]),
                              recorder)
