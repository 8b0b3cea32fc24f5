"""VGG-16 as a fixed feature extractor (strategy vgg16_feature_extractor), held to everything the four
ResNet-18 strategies are, by the same test functions run for this strategy:

- free-running (parity/test_free_running.py): both trainers, same flags, each with its own pipeline, on
  the same small stand-in set: the data order, the first batch, every step's loss, every epoch's curves,
  the first gradients and momentum buffers, the best weights;
- the replay (parity/test_replay.py): both replays on fixtures of this strategy (exported here, with the
  VGG-16 weights): eval logits and predictions, every module's output in forward order, every step's
  loss, gradients, momentum buffers, the state after each epoch, learning rates, metrics, best epoch,
  parameter counts.

VGG-16 at 224x224 costs about twelve times ResNet-18's forward pass, so this runs with the zoo (extended),
not in the core `pytest parity`. Its stand-in weights (553 MB, reference_py/pretrained.py --arch vgg16)
and its fixtures (as much again) are made in a temporary directory and deleted once the sides ran; the
runs (2.3 GB: VGG-16's module outputs on a batch of 4 at 224x224 are 460 MB per trace) once the module's
tests are done.
"""

import shutil

import pytest

from parity import test_free_running as free
from parity import test_replay as replay
from parity.runs import Replays, Run, same_stack
from parity.sides import python, ruby, run_together
from reference_py import standin_data
from reference_py.pretrained import ensure_net

pytestmark = [pytest.mark.extended, pytest.mark.zoo]

STRATEGY = "vgg16_feature_extractor"
FREE_RUNNING_CHECKS = ["test_data_order", "test_first_batch_as_it_entered_the_model", "test_every_step_loss",
                       "test_epoch_curves", "test_first_gradients_and_momentum", "test_best_epoch_and_weights"]
REPLAY_CHECKS = ["test_eval_logits", "test_eval_predictions", "test_module_outputs", "test_step_losses",
                 "test_first_step_gradients", "test_momentum_buffers", "test_state_after_each_epoch",
                 "test_learning_rate_per_epoch", "test_epoch_metrics", "test_best_epoch_and_accuracy",
                 "test_parameter_counts"]


@pytest.fixture(scope="module")
def vgg16(tmp_path_factory):
    """(free-running runs as test_free_running's free_runs, the replays as parity.runs.Replays), all four
    sides run at once once the weights and the fixtures are made; the runs are deleted afterwards."""
    from parity.conftest import RUNS

    out, scratch = RUNS / "vgg16", tmp_path_factory.mktemp("vgg16")
    try:
        weights = ensure_net(scratch / "vgg16.pth", seed=free.SEED, arch="vgg16")
        fixtures = scratch / "fixtures"
        run_together(python("export_fixtures.py", "--out", fixtures, "--weights", weights, "--strategy", STRATEGY))
        data_dir = standin_data.ensure_standin(out / "free" / "data", seed=free.SEED, counts=free.DATA_COUNTS)
        common = ["--strategy", STRATEGY, "--epochs", free.EPOCHS, "--step-size", free.STEP_SIZE, "--seed", free.SEED,
                  "--data-dir", data_dir, "--weights", weights, "--no-progress", "--record"]
        run_together(python("train.py", *common, "--out-dir", out / "free" / "python"),
                     ruby("train", *common, "--out-dir", out / "free" / "ruby"),
                     python("replay.py", "--fixtures", fixtures, "--out", out / "replay" / "python"),
                     ruby("replay", "--fixtures", fixtures, "--out", out / "replay" / "ruby"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    free_runs = {STRATEGY: (free.FreeRun(out / "free" / "ruby" / STRATEGY),
                            free.FreeRun(out / "free" / "python" / STRATEGY))}
    yield free_runs, Replays(Run(out / "replay" / "python"), Run(out / "replay" / "ruby"))
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("check_name", FREE_RUNNING_CHECKS)
def test_vgg16_extractor_free_running(check_name, vgg16, recorder):
    free_runs, _ = vgg16
    ruby_run, python_run = free_runs[STRATEGY]
    assert python_run.curves["strategy"] == STRATEGY
    getattr(free, check_name)(STRATEGY, free_runs, same_stack(python_run.curves["stack"], ruby_run.curves["stack"]),
                              recorder)


@pytest.mark.parametrize("check_name", REPLAY_CHECKS)
def test_vgg16_extractor_replay(check_name, vgg16, recorder):
    _, replays = vgg16
    assert replays.python.info["strategies"] == [STRATEGY]
    getattr(replay, check_name)(STRATEGY, replays, recorder)
