"""Free-running parity: the trainers users run (`reference_py/train.py`, `ruby_port/bin/train`), each
with its own pipeline from the image files (decoding, resampling, shuffling, augmentation), same flags.

Every strategy trains EPOCHS epochs with a StepLR decay inside the run, on a small set made by the
stand-in generator (with its grayscale, CMYK and palette files); the default strategy loads in the
trainers' default 4 worker processes, as users run it, the others in the trainer's own process. On one
stack everything must be bit-identical: the data order, the first batch as it entered the model, every
step's loss, every epoch's metrics and learning rates, the first gradients, the SGD momentum buffers
after the first step and at the end, the best epoch and the best weights.
"""

import json
from pathlib import Path

import pytest
import torch

from parity import data_paths, quantities
from parity.compare import check
from parity.early import started, starts_early
from parity.runs import FreeRun, free_pair
from parity.settings import ALL_STRATEGIES, PYTHON_FREE_RUNS, ROOT, RUNS, STRATEGIES
from parity.sides import TIMEOUT, python, ruby, start_served
from reference_py import recipe, standin_data
from reference_py.data import check_layout, image_files
from reference_py.pretrained import ensure_net

# Two epochs, the learning rate decaying after the first: a decay inside the run; with SEED every strategy's best epoch
# is the first and three of them tie in val accuracy at the second. A third epoch (EPOCHS 3, STEP_SIZE 2 before) took
# no path these two do not, and cost a third of each run: at 4 workers 8 more forks of the trainer a side.
EPOCHS = 2
STEP_SIZE = 1
SEED = 0
# Images per class, unequal and ending on a partial batch in both splits, as hymenoptera_data (ants/bees
# train 124/120, val 70/83); indices 1, 2, 3 of a class are its grayscale, CMYK and palette files. With
# SEED, some strategies' val accuracy ties and their best epoch is not the last (checked by
# test_the_data_takes_every_path_the_real_data_takes).
DATA_COUNTS = {"train": {"ants": 4, "bees": 3}, "val": {"ants": 2, "bees": 3}}
FREE_RUNS = RUNS / "free"  # both trainers' out-dirs and their data
# The default strategy (what `rake train` and `train.py` run) is trained with the trainers' default --workers (4, the
# tutorial's num_workers), as users run it; the others with --workers 0. What a worker loads is the same whatever the
# strategy, and at 4 workers each run costs twice the CPU (4 forks per split per epoch, each paying its page faults
# while the trainer writes its memory); test_data_loader.py proves both loaders at 0, 2 and 4 workers batch for batch.
IN_WORKERS = recipe.default("strategy")
# The trainers are forked by the session's server of their language, which loaded LibTorch and torchvision once (and
# Python's matplotlib, which train.py draws its figures with; parity/sides.py's session_server): each child runs `python
# reference_py/train.py ...` or `ruby ruby_port/bin/train ...` as the interpreter would, without paying that start.


def worker_flags(strategy):
    """No --workers for the default strategy (the trainers' default), --workers 0 for the others."""
    return [] if strategy == IN_WORKERS else ["--workers", 0]


def free_run_commands(out, data_dir, strategies=STRATEGIES, sides=("python", "ruby")):
    """The trainers of `sides`, each strategy, into out/SIDE/STRATEGY, on the small set at data_dir."""
    weights = ensure_net(ROOT / "net.pth")
    common = ["--epochs", EPOCHS, "--step-size", STEP_SIZE, "--seed", SEED, "--data-dir", data_dir,
              "--weights", weights, "--no-progress", "--record"]
    trainers = {"python": lambda strategy: python("train.py", "--strategy", strategy, *common, *worker_flags(strategy),
                                                  "--out-dir", out / "python"),
                "ruby": lambda strategy: ruby("train", "--strategy", strategy, *common, *worker_flags(strategy),
                                              "--out-dir", out / "ruby")}
    return [trainers[side](strategy) for strategy in strategies for side in sides]


def free_data(out):
    """The small set, made in out/data when missing."""
    return standin_data.ensure_standin(out / "data", seed=SEED, counts=DATA_COUNTS)


@starts_early("free_runs")
def start_free_runs(_session, background):
    """Both trainers, every strategy, all at once; the Ruby side alone when PARITY_PYTHON_FREE_RUNS holds the
    Python side's (free_run_commands' python/ and data/), on that same set."""
    if PYTHON_FREE_RUNS:
        return start_served(*free_run_commands(FREE_RUNS, PYTHON_FREE_RUNS / "data", sides=("ruby",)),
                            background=background)
    return start_served(*free_run_commands(FREE_RUNS, free_data(FREE_RUNS)), background=background)


FREE_RUNNING = {}  # the session's free runs (start_free_runs' Running), once taken: the module's and the data paths'


def session_free_runs(session):
    """This session's free runs, started at collection or now (parity/early.py), taken once: the module's fixture and
    the data paths' children (test_fault_injection.py, python_free_runs) read the same runs."""
    if "running" not in FREE_RUNNING:
        FREE_RUNNING["running"] = started("free_runs", session)
    return FREE_RUNNING["running"]


def python_free_runs(session, strategy):
    """FREE_RUNS once this session's Python trainer of `strategy` has ended, when the session trains it anyway (a
    collected test reads free_runs, its strategies include this one, and no PARITY_PYTHON_FREE_RUNS); else None. Its
    python/ and data/ are what PARITY_PYTHON_FREE_RUNS takes: the command is free_run_commands' own."""
    if (PYTHON_FREE_RUNS or strategy not in STRATEGIES
            or not any("free_runs" in item.fixturenames for item in session.items)):
        return None
    running = session_free_runs(session)
    for command, process in zip(running.commands, running.processes):
        if command.side == "Python" and command.argv[command.argv.index("--strategy") + 1] == strategy:
            if process.wait(timeout=TIMEOUT) != 0:
                running.wait()  # raises SideFailed, with the trainer's stderr
            return FREE_RUNS
    raise AssertionError(f"no Python trainer of {strategy} among this session's free runs")


@pytest.fixture(scope="module")
def free_runs(request):
    """strategy -> the Pair of both trainers' FreeRuns (parity/runs.py)."""
    session_free_runs(request.session).wait()
    python_out = PYTHON_FREE_RUNS or FREE_RUNS
    return {strategy: free_pair(FreeRun(FREE_RUNS / "ruby" / strategy), FreeRun(python_out / "python" / strategy))
            for strategy in STRATEGIES}


def test_every_epoch_and_a_decay(strategy, free_runs):
    """What the comparisons below need: EPOCHS epochs run and their orders recorded on both sides, a StepLR decay."""
    for side, run in (("ruby", free_runs[strategy].ruby), ("python", free_runs[strategy].python)):
        epochs, orders = run.curves["epochs"], run.curves["data_order"]["train"]
        assert len(epochs) == len(orders) == EPOCHS, (
            f"{side} [strategy={strategy}]: {len(epochs)} epochs run, {len(orders)} with a recorded order, expected {EPOCHS}")
    epochs = free_runs[strategy].python.curves["epochs"]
    assert epochs[-1]["lr"][0] < epochs[0]["lr"][0], "the run must include a StepLR decay"


def test_the_default_strategy_loads_in_the_trainers_default_workers(strategy, free_runs):
    """The user's default path: the default strategy trained at the trainers' default worker count (4), the others
    at 0, as each trainer's config.json says."""
    expected = recipe.default("workers") if strategy == IN_WORKERS else 0
    for side, run in (("ruby", free_runs[strategy].ruby), ("python", free_runs[strategy].python)):
        workers = json.loads((run.folder / "config.json").read_text())["workers"]
        assert workers == expected, f"{side} [strategy={strategy}]: trained with {workers} workers, expected {expected}"


@pytest.mark.parametrize("quantity", quantities.of("free"), ids=quantities.ident)
def test_quantity(strategy, quantity, free_runs, recorder):
    check(quantities.compare(quantity, free_runs[strategy]), recorder)


def test_best_pth_is_the_file_torch_save_writes(strategy, free_runs):
    """The trainers' best.pth as users get it: Python loads Ruby's with weights_only=True (torch.rb's own
    Torch.save wrote an archive that needs an unsafe load), and on one stack the two files are the same
    bytes (their tensors are compared by the best state dict's row above, on any stack)."""
    pair = free_runs[strategy]
    ruby_file, python_file = pair.ruby.folder / "best.pth", pair.python.folder / "best.pth"
    ruby_weights = torch.load(ruby_file, weights_only=True)
    python_weights = torch.load(python_file, weights_only=True)
    assert list(ruby_weights) == list(python_weights), f"[strategy={strategy}] best.pth's keys differ"
    if pair.same_stack:
        assert ruby_file.read_bytes() == python_file.read_bytes(), (
            f"[strategy={strategy}] best.pth: ruby's {ruby_file.stat().st_size} bytes are not python's "
            f"{python_file.stat().st_size}")


def test_the_data_takes_every_path_the_real_data_takes(free_runs):
    """A partial last batch in both splits, unequal classes, a tie in val accuracy, a best epoch before the
    last (parity/data_paths.py), read from what the reference's runs record: their data dir, batch size
    and curves."""
    python_runs = {strategy: pair.python for strategy, pair in free_runs.items()}
    first = next(iter(python_runs.values()))
    data_dir = Path(first.curves["data"]["dir"])
    class_counts = {split: [len(image_files(data_dir / split / name)) for name in check_layout(data_dir)]
                    for split in data_paths.SPLITS}
    batch_size = json.loads((first.folder / "config.json").read_text())["batch_size"]
    taken = data_paths.paths_taken(class_counts, batch_size, {s: run.curves for s, run in python_runs.items()})
    data_paths.check_every_path_taken(taken, "the free-running data", "change DATA_COUNTS, SEED or EPOCHS in "
                                      "parity/test_free_running.py until it does", STRATEGIES == ALL_STRATEGIES)
