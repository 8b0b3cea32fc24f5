"""VGG-16 as a fixed feature extractor (strategy vgg16_feature_extractor), held to everything the four
ResNet-18 strategies are, by the same test functions run for this strategy:

- free-running (as parity/test_free_running.py): both trainers, same flags, each with its own pipeline,
  on the same small stand-in set, 2 epochs with a StepLR decay inside: the data order, the first batch, every
  step's loss, every epoch's curves, the first gradients and momentum buffers, the best weights; loading in the
  trainer's own process (--workers 0), as test_free_running.py trains every strategy but the default: at the
  default 4 workers each split of each epoch forked 4 workers from a trainer holding VGG-16 (1.5 GB), whose
  page faults doubled the runs' CPU (51 and 53 CPU-s);
- the replay (as parity/test_replay.py): both replays on fixtures of this strategy (exported here, with
  the VGG-16 weights): eval logits and predictions, every module's output in forward order, every step's
  loss, gradients, momentum buffers, the state after each epoch, learning rates, metrics, best epoch,
  parameter counts. The fixtures hold 5 eval and 5 replay images (ants/bees 2/3 and 3/2): unequal classes
  and a last batch of 1 in both splits. The paths that only data shaped like the real set takes (a tie, a
  best epoch before the last) are test_replay.py's, on ResNet-18, through the same loop; at the export's
  default 13 and 9 images the two replays cost twice the CPU, each image a VGG-16 forward pass.
Both compare every row of the table of compared quantities (parity/quantities.py) for their kind of run.

VGG-16 at 224x224 costs about twelve times ResNet-18's forward pass, so this runs with the zoo (extended),
not in the core `pytest parity`. Its stand-in weights (553 MB, reference_py/pretrained.py --arch vgg16)
and its fixtures (as much again) are made in a temporary directory and deleted once the sides ran; the
runs (2.3 GB: VGG-16's module outputs on a batch of 4 at 224x224 are 460 MB per trace) once the module's
tests are done.
"""

import shutil

import pytest

from parity import quantities
from parity import test_free_running as free
from parity.compare import check
from parity.runs import FreeRun, Replays, Run, free_pair
from parity.sides import python, ruby, start_served
from reference_py import standin_data
from reference_py.pretrained import ensure_net

pytestmark = [pytest.mark.extended, pytest.mark.zoo]

STRATEGY = "vgg16_feature_extractor"
EVAL_PER_CLASS, REPLAY_PER_CLASS = ["2", "3"], ["3", "2"]  # 5 images each: batches of 4 and 1
# The free runs: 2 epochs, the learning rate decaying after the first (the replay protocol's epochs and step, and
# test_free_running.py's), on test_free_running.py's set.
EPOCHS, STEP_SIZE = 2, 1


@pytest.fixture(scope="module")
def vgg16(tmp_path_factory):
    """(the free runs' Pair, the replays as parity.runs.Replays), all four sides run at once once the weights
    and the fixtures are made; the runs are deleted afterwards."""
    from parity.conftest import RUNS

    out, scratch = RUNS / "vgg16", tmp_path_factory.mktemp("vgg16")
    try:
        weights = ensure_net(scratch / "vgg16.pth", seed=free.SEED, arch="vgg16")
        fixtures = scratch / "fixtures"
        start_served(python("export_fixtures.py", "--out", fixtures, "--weights", weights, "--strategy", STRATEGY,
                            "--eval-per-class", *EVAL_PER_CLASS, "--replay-per-class", *REPLAY_PER_CLASS)).wait()
        data_dir = standin_data.ensure_standin(out / "free" / "data", seed=free.SEED, counts=free.DATA_COUNTS)
        common = ["--strategy", STRATEGY, *free.worker_flags(STRATEGY), "--epochs", EPOCHS, "--step-size", STEP_SIZE,
                  "--seed", free.SEED, "--data-dir", data_dir, "--weights", weights, "--no-progress", "--record"]
        # forked by the session's servers (parity/sides.py's session_server), which loaded LibTorch and torchvision
        # once: as processes of their own, each paid that start and its teardown
        start_served(python("train.py", *common, "--out-dir", out / "free" / "python"),
                     ruby("train", *common, "--out-dir", out / "free" / "ruby"),
                     python("replay.py", "--fixtures", fixtures, "--out", out / "replay" / "python"),
                     ruby("replay", "--fixtures", fixtures, "--out", out / "replay" / "ruby")).wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    free_runs = free_pair(FreeRun(out / "free" / "ruby" / STRATEGY), FreeRun(out / "free" / "python" / STRATEGY))
    yield free_runs, Replays(Run(out / "replay" / "python"), Run(out / "replay" / "ruby"))
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("quantity", quantities.of("free"), ids=quantities.ident)
def test_vgg16_extractor_free_running(quantity, vgg16, recorder):
    free_runs, _ = vgg16
    assert free_runs.python.curves["strategy"] == STRATEGY
    epochs = free_runs.python.curves["epochs"]
    assert len(epochs) == EPOCHS and epochs[-1]["lr"][0] < epochs[0]["lr"][0], "EPOCHS epochs, with a StepLR decay"
    check(quantities.compare(quantity, free_runs), recorder)


@pytest.mark.parametrize("quantity", quantities.of("replay"), ids=quantities.ident)
def test_vgg16_extractor_replay(quantity, vgg16, recorder):
    _, replays = vgg16
    assert replays.python.info["strategies"] == [STRATEGY]
    check(quantities.compare(quantity, replays.pair(STRATEGY)), recorder)
