"""A port nobody tuned: the PyTorch tutorial's own code (examples/tutorial.py) against the same tutorial
written on torch.rb's and torchvision-ruby's public API as a user would (examples/tutorial_port.rb),
neither importing project code.

Both run the same way (`torch.manual_seed(SEED)` first, `shuffle=True`, num_workers 0 and 4), at 0 workers
for EPOCHS[0] epochs with two StepLR decays inside, at 4 for EPOCHS[4] with one, on a small stand-in set
whose splits both end on a partial batch and hold a grayscale, a CMYK and a palette file. With `-rpytorch_parity` the port's curves (each epoch's
learning rate, losses and accuracies) and best weights must be bit-identical to Python's; plain (the
gems alone, --workers 0) it must differ, and the test names where first. Both sides run here at the
same thread count, on this machine's one LibTorch.

Each run is forked by the session's server of its language, which loaded LibTorch and torchvision once
(parity/fork_server.py, parity/sides.py's session_server):
`python examples/tutorial.py ...` by a Python one, `ruby [-rpytorch_parity] examples/tutorial_port.rb ...` by one
that `bundle exec ruby` started, so that the bundle is set up as `bundle exec` sets it up; each child runs the script
as the interpreter would (pytorch_parity, when asked for, is required before the script, after the gems it fixes:
loaded before or after them, it changes the same). The five runs paid that start each, and Ruby's and Python's
teardown, which a child skips.
"""

import json
import re
import shutil
import sys

import pytest
import torch

from parity.compare import Comparison, check, measure, measure_dict
from parity.early import started, starts_early
from parity.settings import ROOT, RUNS
from parity.sides import Command, SideFailed, session_server, start_together
from parity.tolerances import for_quantity
from reference_py import standin_data
from reference_py.pretrained import ensure_net

EXAMPLES = ROOT / "examples"
EXAMPLE_RUNS = RUNS / "example"
STEP_SIZE = 1  # decays after epochs 0 and 1; at the second, torch.rb's closed form is one ulp off PyTorch's
# epochs at each num_workers: 3 at 0, for the second decay; 2 at 4, where what is new is the worker processes
# (each pass forks 4 afresh: a third epoch cost each side about 8 CPU-s more, and showed nothing 0 workers do not)
EPOCHS = {0: 3, 4: 2}
SEED = 0
# images per class: batches of 4, 3 and 4, 2; indices 1-3 of a class its grayscale, CMYK and palette files. A third
# train batch (5 a class before) was a third more steps and showed no path two do not
DATA_COUNTS = {"train": {"ants": 4, "bees": 3}, "val": 3}
WORKERS = (0, 4)
# What the plain port meets first, as observed on torch.rb 0.12.2 and torchvision-ruby 0.3.0: the tutorial's
# first copy.deepcopy(model.state_dict()), before any image is read, where Ruby's Marshal refuses the tensors.
PLAIN_FIRST_DIFFERENCE = "the run stopped: no _dump_data is defined for class Torch::NN::Parameter (TypeError)"


def tutorial(workers, out):
    """examples/tutorial.py, the PyTorch page's code."""
    return Command("Python", [sys.executable, str(EXAMPLES / "tutorial.py"), *options(workers, out)])


def tutorial_port(workers, out, pytorch_parity=True):
    """`ruby [-rpytorch_parity] examples/tutorial_port.rb`, forked by a server that `bundle exec` started (servers)."""
    return Command("Ruby", ["ruby", *(["-rpytorch_parity"] if pytorch_parity else []), str(EXAMPLES / "tutorial_port.rb"),
                            *options(workers, out)])


def servers():
    """Each language's fork server, the session's (parity/sides.py's session_server): side ("Python", "Ruby") -> the
    ForkServer that runs its commands."""
    return {side: session_server(side) for side in ("Python", "Ruby")}


def options(workers, out):
    return [str(value) for value in ("--data-dir", EXAMPLE_RUNS / "data", "--weights", ROOT / "net.pth", "--epochs",
                                     EPOCHS[workers], "--step-size", STEP_SIZE, "--seed", SEED, "--workers", workers,
                                     "--out-dir", out)]


class ExampleRuns:
    """Every run of the examples, each started on its own, so that one that fails does not hide the others."""

    def __init__(self, background):
        standin_data.ensure_standin(EXAMPLE_RUNS / "data", seed=SEED, counts=DATA_COUNTS)
        ensure_net(ROOT / "net.pth")
        commands = {}
        for workers in WORKERS:
            commands[("python", workers)] = tutorial(workers, self.folder("python", workers))
            commands[("ruby", workers)] = tutorial_port(workers, self.folder("ruby", workers))
        commands[("plain", 0)] = tutorial_port(0, self.folder("plain", 0), pytorch_parity=False)
        for side, workers in commands:
            shutil.rmtree(self.folder(side, workers), ignore_errors=True)
        self.servers = servers()
        self.running = {key: start_together(command, background=background, servers=self.servers)
                        for key, command in commands.items()}

    @staticmethod
    def folder(side, workers):
        return EXAMPLE_RUNS / f"{side}-workers{workers}"

    def wait(self, side, workers):
        """The run's folder once it ended; raises SideFailed, with its stderr, when it failed."""
        self.running[(side, workers)].wait()
        return self.folder(side, workers)

    def stop(self):
        for running in self.running.values():
            running.stop()


@starts_early("example_runs")
def start_example_runs(_session, background):
    return ExampleRuns(background)


@pytest.fixture(scope="module")
def example_runs(request):
    runs = started("example_runs", request.session)
    yield runs
    runs.stop()  # those the collected tests did not wait for (-k, -x)


def curves(folder):
    return json.loads((folder / "curves.json").read_text())


def best_weights(folder):
    """best.pth as a user loads it, either side's (pytorch_parity's Torch.save writes what torch.load reads)."""
    return torch.load(folder / "best.pth", weights_only=True)


def comparisons(ruby_folder, python_folder, workers, **where):
    """Everything both runs wrote, in the order they computed it: each epoch's learning rate, training loss and
    accuracy, validation loss and accuracy; then the best accuracy and the best weights, key by key."""
    ruby, python = curves(ruby_folder), curves(python_folder)
    results = []
    where = {"workers": workers, **where}
    if len(ruby["epochs"]) != len(python["epochs"]) or len(python["epochs"]) != EPOCHS[workers]:
        epochs = Comparison(quantity="example epochs run", where=where, tolerance=for_quantity("counts", True))
        epochs.problem = f"ruby {len(ruby['epochs'])}, python {len(python['epochs'])}, expected {EPOCHS[workers]}"
        results.append(epochs)
    for r, p in zip(ruby["epochs"], python["epochs"]):
        for key, kind in (("lr", "lr"), ("train_loss", "metrics"), ("train_acc", "metrics"), ("val_loss", "metrics"),
                          ("val_acc", "metrics")):
            results.append(measure(torch.tensor(r[key], dtype=torch.float64), torch.tensor(p[key], dtype=torch.float64),
                                   quantity=f"example {key}", tolerance=for_quantity(kind, True), **where,
                                   epoch=p["epoch"]))
    results.append(measure(torch.tensor(ruby["best_acc"], dtype=torch.float64),
                           torch.tensor(python["best_acc"], dtype=torch.float64), quantity="example best val accuracy",
                           tolerance=for_quantity("metrics", True), **where))
    results += measure_dict(best_weights(ruby_folder), best_weights(python_folder),
                            quantity="example best weights", tolerance=for_quantity("state", True), **where)
    return results


@pytest.mark.parametrize("workers", WORKERS)
def test_port_with_pytorch_parity_is_bit_identical(workers, example_runs, recorder):
    python = example_runs.wait("python", workers)
    ruby = example_runs.wait("ruby", workers)
    results = comparisons(ruby, python, workers)
    assert curves(python)["epochs"][-1]["lr"] < curves(python)["epochs"][0]["lr"], "the run must include a StepLR decay"
    check(results, recorder)


def failure_line(error):
    """The exception a failed Ruby run ended with ("MESSAGE (CLASS)"), from the stderr in its SideFailed."""
    match = re.search(r"^\S+:\d+:in [`'][^'\n]*': (.+)$", str(error), re.MULTILINE)
    return match.group(1) if match else str(error).splitlines()[0]


def test_plain_port_diverges(example_runs):
    python = example_runs.wait("python", 0)
    try:
        plain = example_runs.wait("plain", 0)
    except SideFailed as error:
        first = f"the run stopped: {failure_line(error)}"
    else:
        differing = [c for c in comparisons(plain, python, 0) if not c.passed]
        assert differing, ("the plain port (torch.rb and torchvision-ruby without pytorch_parity) now gives exactly "
                           "what the PyTorch tutorial gives: the gems may have fixed what pytorch_parity fixes")
        first = differing[0].message()
    assert first == PLAIN_FIRST_DIFFERENCE, (
        f"the plain port now first differs from the PyTorch tutorial at {first!r}, no longer at "
        f"{PLAIN_FIRST_DIFFERENCE!r}: the gems changed; update PLAIN_FIRST_DIFFERENCE")
