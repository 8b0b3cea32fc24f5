"""The diagnosis on ports nobody tuned, recorded for real by both recorders without editing them.

Core: the small CNN on generated images (examples/small_cnn.py and its port, not the tutorial): with
-rpytorch_parity the two runs are identical; plain, the diagnosis names each deviation the port meets,
each with its file, and every other divergence is a consequence of one of them.

Extended (bin/test): the tutorial (examples/tutorial.py and examples/tutorial_port.rb) on a small
stand-in set, two epochs with a StepLR decay after each at num_workers 0, one at 4 (what is new there is
the worker processes): identical with -rpytorch_parity at both; plain, named where it stops; with every
fix of the room but one (and the fixes that need it), the diagnosis names that one, or the runs are
identical (the port does not meet it); and copies of the port with one fault each are named at their
first place, none as a known deviation. These last two train one epoch at num_workers 0, against a Python
run of one (two without a scheduler's fix, which the second decay shows: SHORT_EPOCHS).
"""

import functools
import os
import re
import shutil
import sys

import pytest

from parity import deviations, diagnose
from parity.early import started, starts_early
from parity.fork_server import ForkServer, run_each
from parity.run_format import RunError, read_run
from parity.settings import ROOT, RUNS
from parity.sides import BACKGROUND_NICENESS, Command, SideFailed, session_server, start_together
from reference_py import standin_data
from reference_py.pretrained import ensure_net

EXAMPLES = ROOT / "examples"
LIB = ROOT / "ruby_port" / "lib"
DIAGNOSE_RUNS = RUNS / "diagnose"
CNN_EPOCHS = 3  # StepLR(step_size=1, gamma=0.1) from lr 0.01: the closed form parts from the product at the second decay
# epochs at each num_workers: 2 at 0, for StepLR's second decay (where torch.rb's closed form is an ulp off), which
# the leave-one-out and the faults run; 1 at 4, whose runs show the worker processes (a second epoch cost each
# side about 8 CPU-s more, forking 8 workers again)
TUTORIAL_EPOCHS = {0: 2, 4: 1}
# The leave-one-out's and the faults' runs (at num_workers 0) train 1 epoch, against a Python run of 1 epoch: a fault
# and a fix of the data, the transforms, the modules or the optimizer show in the first epoch, whose every step they
# act on (each was named at the same first place with 2); a scheduler's fix (torch/optim/lr_scheduler/) is left out
# with TUTORIAL_EPOCHS[0], as its deviation shows at the second decay. A second epoch cost each run about 1.9 CPU-s.
SHORT_EPOCHS = 1
SECOND_DECAY_FIXES = "torch/optim/lr_scheduler/"
TUTORIAL_STEP_SIZE = 1
DATA_COUNTS = {"train": 4, "val": 2}  # images per class; indices 1-3 of each folder are the grayscale, CMYK and palette files
PARALLEL_RUNS = 2  # recorded runs at a time in the extended tests: each Ruby run holds ResNet-18 and its records


def record_python(script, out, *args):
    """`python -m parity.record --out OUT SCRIPT args`."""
    return Command("Python", [sys.executable, "-m", "parity.record", "--out", str(out), str(script), *map(str, args)])


def record_ruby(script, out, *args, requires=("pytorch_parity",)):
    """`PYTORCH_PARITY_RECORD=OUT bundle exec ruby -rREQUIRE... -rpytorch_parity/record SCRIPT args`, as the
    README runs it (ruby_port/lib on RUBYLIB, as the venv's activation puts it)."""
    flags = [f"-r{name}" for name in requires] + ["-rpytorch_parity/record"]
    return Command("Ruby", ["bundle", "exec", "ruby", *flags, str(script), *map(str, args)],
                   {"PYTORCH_PARITY_RECORD": str(out), "RUBYLIB": str(LIB)})


SERVER = {}  # the module's Ruby fork server, once a run needs it (closed as the module ends: close_servers)


def ruby_server():
    """The fork server that runs record_ruby's commands (parity/fork_server.rb): it set up the bundle and loaded
    LibTorch once, so that no recorded Ruby run pays that start (nor Ruby's teardown). Not torchvision: a run records
    whether it was loaded when the recording started (the small CNN never loads it)."""
    if "ruby" not in SERVER:
        environment = Command("Ruby", [], {"RUBYLIB": str(LIB)}).env()
        SERVER["ruby"] = ForkServer.ruby(["torch"], environment, ROOT)
    return SERVER["ruby"]


def python_server():
    """The fork server that runs record_python's commands (`python -m parity.record ...`, parity/fork_server.py): the
    session's (parity/sides.py's session_server), which imported LibTorch and torchvision once (a Python run records them
    both, parity.record's describe_stack) and matplotlib."""
    return session_server("Python")


@pytest.fixture(scope="module", autouse=True)
def close_servers():
    yield
    while SERVER:
        SERVER.popitem()[1].close()


def start_ruby(command, output, niceness=0):
    """A record_ruby command, run by ruby_server(), its stdout and stderr in the file `output`: a fork_server.Job."""
    assert command.argv[:3] == ["bundle", "exec", "ruby"], command.argv
    return ruby_server().start(command.argv[3:], command.env(), output, niceness=niceness)


class ServerRun:
    """A record_ruby command run by ruby_server(), waited for and stopped as sides.start_together's are."""

    def __init__(self, command, output, background):
        self.command, self.output = command, output
        output.parent.mkdir(parents=True, exist_ok=True)  # the server's child opens it; on a fresh clone no run made it
        self.job = start_ruby(command, output, BACKGROUND_NICENESS if background else 0)

    def wait(self):
        if self.job.wait() != 0:
            raise SideFailed(f"the Ruby side failed (exit {self.job.returncode}): {' '.join(self.command.argv)}\n"
                             f"--- its output ---\n{self.output.read_text()[-8000:]}")

    def stop(self):
        self.job.stop()


class RecordedRuns:
    """Recorded runs started together (each on its own: one that fails does not hide the others)."""

    def __init__(self, commands, background):
        for command, out in commands.values():
            shutil.rmtree(out, ignore_errors=True)
        self.outs = {name: out for name, (_, out) in commands.items()}
        self.read = {}  # name -> its Run, read once: each test that diagnoses it maps the same pages (a tutorial run's 340 MB)
        self.running = {name: ServerRun(command, out.with_name(f"{out.name}.output"), background)
                        if command.side == "Ruby" else start_together(command, background=background,
                                                                      servers={"Python": python_server()})
                        for name, (command, out) in commands.items()}

    def run(self, name):
        """The run, read, once its process ended (a port that stops with an error is a run too)."""
        if name not in self.read:
            self.read[name] = self._read(name)
        return self.read[name]

    def _read(self, name):
        failure = None
        try:
            self.running[name].wait()
        except SideFailed as error:
            failure = error
        try:
            return read_run(self.outs[name])
        except RunError as error:
            raise AssertionError(f"{error}\n{failure or ''}") from None

    def stop(self):
        for running in self.running.values():
            running.stop()


@starts_early("cnn_runs")
def start_cnn_runs(_session, background):
    runs = DIAGNOSE_RUNS / "small_cnn"
    args = ("--epochs", CNN_EPOCHS)
    return RecordedRuns({
        "python": (record_python(EXAMPLES / "small_cnn.py", runs / "python", *args), runs / "python"),
        "ruby": (record_ruby(EXAMPLES / "small_cnn_port.rb", runs / "ruby", *args), runs / "ruby"),
        "plain": (record_ruby(EXAMPLES / "small_cnn_port.rb", runs / "plain", *args, requires=()), runs / "plain"),
    }, background)


@pytest.fixture(scope="module")
def cnn_runs(request):
    runs = started("cnn_runs", request.session)
    yield runs
    runs.stop()


def files_named(result):
    return {d.match.file for d in result.divergences if d.match is not None}


def unexplained(result):
    """Divergences that are neither a consequence of an earlier one nor a known deviation."""
    return [d for d in result.divergences if d.cause is None and d.match is None]


def test_small_cnn_with_pytorch_parity_is_identical(cnn_runs, capsys):
    python, ruby = cnn_runs.run("python"), cnn_runs.run("ruby")
    assert python.end["status"] == ruby.end["status"] == "completed"
    status = diagnose.main([str(python.path), str(ruby.path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "identical:" in printed and "bit for bit" in printed
    assert (python.path.parent / "diagnosis-python-vs-ruby.md").exists()


def test_small_cnn_plain_is_diagnosed_deviation_by_deviation(cnn_runs, capsys):
    """The gems alone: the shuffled loader's order is the first divergence, BatchNorm's batch count and
    StepLR's closed form are independent ones, each named with its file; all else follows from them."""
    python, plain = cnn_runs.run("python"), cnn_runs.run("plain")
    result = diagnose.diagnose(python, plain)
    shown = "\n".join(diagnose.summary_lines(result))
    first = result.divergences[0]
    assert first.quantity.key == ("order", 0, 0), shown
    assert first.match is not None and first.match.file == "torch/utils/data/data_loader.rb", shown
    independent = {d.match.file for d in result.divergences[1:] if d.cause is None and d.match is not None}
    assert independent == {"torch/nn/batch_norm2d.rb", "torch/optim/lr_scheduler/step_lr.rb"}, shown
    assert not unexplained(result), shown
    assert diagnose.main([str(python.path), str(plain.path)]) == 1
    printed = capsys.readouterr().out
    for file in files_named(result):
        assert f"removed by: ruby_port/lib/pytorch_parity/{file}" in printed


# --- extended: the tutorial ---

def tutorial_args(data, out, workers, epochs=None):
    return ("--data-dir", data, "--weights", ROOT / "net.pth", "--epochs", epochs or TUTORIAL_EPOCHS[workers], "--step-size",
            TUTORIAL_STEP_SIZE, "--workers", workers, "--out-dir", out)


def tutorial_data():
    data = DIAGNOSE_RUNS / "data"
    standin_data.ensure_standin(data, seed=0, counts=DATA_COUNTS)
    ensure_net(ROOT / "net.pth")
    return data


@starts_early("tutorial_runs")
def start_tutorial_runs(_session, background):
    data, runs = tutorial_data(), DIAGNOSE_RUNS / "tutorial"
    commands = {}
    for workers in (0, 4):
        out = runs / f"python-workers{workers}"
        commands[("python", workers)] = (record_python(EXAMPLES / "tutorial.py", out, *tutorial_args(data, runs / "out" / out.name, workers)), out)
        out = runs / f"ruby-workers{workers}"
        commands[("ruby", workers)] = (record_ruby(EXAMPLES / "tutorial_port.rb", out, *tutorial_args(data, runs / "out" / out.name, workers)), out)
        out = runs / f"plain-workers{workers}"
        commands[("plain", workers)] = (record_ruby(EXAMPLES / "tutorial_port.rb", out, *tutorial_args(data, runs / "out" / out.name, workers),
                                                    requires=()), out)
    out = runs / f"python-workers0-epochs{SHORT_EPOCHS}"  # the reference of the leave-one-out's and the faults' short runs
    commands[("python", 0, SHORT_EPOCHS)] = (record_python(EXAMPLES / "tutorial.py", out, *tutorial_args(
        data, runs / "out" / out.name, 0, SHORT_EPOCHS)), out)
    return RecordedRuns(commands, background)


@pytest.fixture(scope="module")
def tutorial_runs(request):
    runs = started("tutorial_runs", request.session)
    yield runs
    runs.stop()


@pytest.mark.extended
@pytest.mark.parametrize("workers", (0, 4))
def test_tutorial_port_with_pytorch_parity_is_identical(workers, tutorial_runs):
    result = diagnose.diagnose(tutorial_runs.run(("python", workers)), tutorial_runs.run(("ruby", workers)))
    assert result.identical, "\n".join(diagnose.summary_lines(result))
    assert any(q.key[0] == "scheduler" for q, _ in result.compared)


@pytest.mark.extended
@pytest.mark.parametrize("workers", (0, 4))
def test_plain_tutorial_port_is_named_where_it_stops(workers, tutorial_runs):
    """torch.rb alone: the port stops at the first deep copy (Marshal) at num_workers 0, at the DataLoader's
    num_workers keyword at 4; the diagnosis names the file that removes each."""
    python, plain = tutorial_runs.run(("python", workers)), tutorial_runs.run(("plain", workers))
    result = diagnose.diagnose(python, plain)
    shown = "\n".join(diagnose.summary_lines(result))
    first = result.divergences[0]
    assert first.stop and plain.end["status"] == "raised", shown
    expected = "torch/tensor/marshal.rb" if workers == 0 else "torch/utils/data/data_loader_workers.rb"
    assert first.match is not None and first.match.file == expected, shown
    write_notes(f"plain-workers{workers}", shown)


@functools.cache
def room_requires():
    """Each file of the fixes' room -> the files of the room it requires (require_relative)."""
    room = deviations.FIXES_ROOM
    requires = {}
    for path in room.rglob("*.rb"):
        name = str(path.relative_to(room))
        requires[name] = {str((path.parent / m.group(1)).resolve().relative_to(room.resolve())) + ".rb"
                          for m in re.finditer(r'require_relative "([^"]+)"', path.read_text())
                          if (path.parent / (m.group(1) + ".rb")).resolve().is_relative_to(room.resolve())}
    return requires


def fix_closure(file):
    """The fix file and every file of the room that requires it, directly or not."""
    requires = room_requires()
    closure, grown = {file}, True
    while grown:
        grown = False
        for name, needs in requires.items():
            if name not in closure and needs & closure:
                closure.add(name)
                grown = True
    return closure


def library_without(excluded):
    """pytorch_parity's files in the order pytorch_parity.rb requires them, but the excluded ones."""
    order = re.findall(r'require_relative "pytorch_parity/([^"]+)"', (LIB / "pytorch_parity.rb").read_text())
    return [f"pytorch_parity/{name}" for name in order if f"{name}.rb" not in excluded]


def epochs_to_show(fix):
    """The epochs a run without `fix` trains (SHORT_EPOCHS, SECOND_DECAY_FIXES)."""
    return TUTORIAL_EPOCHS[0] if fix.startswith(SECOND_DECAY_FIXES) else SHORT_EPOCHS


def reference(tutorial_runs, epochs):
    """The Python run at num_workers 0 of `epochs` epochs."""
    return tutorial_runs.run(("python", 0) if epochs == TUTORIAL_EPOCHS[0] else ("python", 0, epochs))


def run_all(commands):
    """Run (command, out) pairs of record_ruby, PARALLEL_RUNS at a time (ruby_server()); each run's folder is recorded
    whatever the exit."""
    def start(command, out):
        shutil.rmtree(out, ignore_errors=True)
        return start_ruby(command, os.devnull)
    run_each([functools.partial(start, command, out) for command, out in commands], PARALLEL_RUNS, timeout=1800)
    return [read_run(out) for _, out in commands]


@pytest.mark.extended
def test_each_deviation_the_tutorial_port_meets_is_named(tutorial_runs):
    """With every fix of the room loaded but one (and those that require it), the diagnosis names that
    one (or one that requires it) as the first divergence's known deviation, and explains every other
    divergence; or the runs are identical, and the port does not meet it (on this data, at num_workers 0:
    the plain run at 4 meets the workers' fix)."""
    data, runs = tutorial_data(), DIAGNOSE_RUNS / "leave_one_out"
    # the fixes of speed, memory and file format change no recorded value: no run can show them
    fixes = [fix for fix in deviations.fix_files() if fix not in deviations.WITHOUT_SIGNATURE]
    commands = []
    for fix in fixes:
        out = runs / fix.removesuffix(".rb").replace("/", "-")
        commands.append((record_ruby(EXAMPLES / "tutorial_port.rb", out, *tutorial_args(
            data, runs / "out" / out.name, 0, epochs_to_show(fix)), requires=library_without(fix_closure(fix))), out))
    met, failures = {}, []
    for fix, run in zip(fixes, run_all(commands)):
        result = diagnose.diagnose(reference(tutorial_runs, epochs_to_show(fix)), run)
        shown = "\n".join(diagnose.summary_lines(result))
        if result.identical:
            met[fix] = "not met"
            continue
        first, closure = result.divergences[0], fix_closure(fix)
        if first.match is None or first.match.file not in closure or unexplained(result):
            failures.append(f"without {fix}:\n{shown}")
        met[fix] = f"first divergence: {first.place()}; named: {', '.join(sorted(files_named(result)))}"
        shutil.rmtree(run.path, ignore_errors=True)
    write_notes("leave-one-out", "\n".join(f"{fix}: {what}" for fix, what in met.items()))
    assert not failures, "\n\n".join(failures)
    assert any(what != "not met" for what in met.values())


FAULTS = {
    # name: (pattern, replacement, the first divergence's key, words its message must hold)
    "momentum 0.8": (r"momentum: 0\.9\)", "momentum: 0.8)", ("optimizer", "after_step"), "momentum: ruby 0.8, python 0.9"),
    "a missing model.eval": (r"\n\s*model\.eval # Set model to evaluate mode", "\n        nil", ("eval_input",), "eval mode"),
    "Normalize's std off by 0.001": (r"Normalize\.new\(\[0\.485, 0\.456, 0\.406\], \[0\.229,",
                                     "Normalize.new([0.485, 0.456, 0.406], [0.230,", ("transform", 0, 4), "output of Normalize"),
    "StepLR stepped before the epoch": (r"(num_epochs\.times do \|epoch\|\n)((?:.*\n)*?)(\s*if phase == \"train\"\n\s*scheduler\.step\n\s*end\n)",
                                        r"\1    scheduler.step\n\2", ("optimizer", "after_step"), "the schedulers had stepped 1 time(s) in ruby"),
    "a transform left out": (r"\n\s*TorchVision::Transforms::RandomHorizontalFlip\.new,", "", ("compose", 0),
                             "RandomHorizontalFlip left out"),
}


@pytest.mark.extended
def test_faults_are_named_at_their_first_place_and_as_no_known_deviation(tutorial_runs):
    python = reference(tutorial_runs, SHORT_EPOCHS)
    data, runs = tutorial_data(), DIAGNOSE_RUNS / "faults"
    source = (EXAMPLES / "tutorial_port.rb").read_text()
    commands = []
    for name, (pattern, replacement, _, _) in FAULTS.items():
        broken, count = re.subn(pattern, replacement, source, count=1)
        assert count == 1, f"the fault {name!r} no longer applies to examples/tutorial_port.rb"
        slug = re.sub(r"\W+", "_", name).strip("_")
        port = runs / f"{slug}.rb"
        port.parent.mkdir(parents=True, exist_ok=True)
        port.write_text(broken)
        commands.append((record_ruby(port, runs / slug, *tutorial_args(data, runs / "out" / slug, 0, SHORT_EPOCHS)), runs / slug))
    failures, notes = [], []
    for (name, (_, _, key, words)), run in zip(FAULTS.items(), run_all(commands)):
        result = diagnose.diagnose(python, run)
        shown = "\n".join(diagnose.summary_lines(result))
        notes.append(f"## {name}\n{shown}")
        first = result.divergences[0] if result.divergences else None
        if first is None or first.quantity.key != key or words not in first.message() or files_named(result):
            failures.append(f"{name}: expected the first divergence at {key} ({words!r}), none known:\n{shown}")
        shutil.rmtree(run.path, ignore_errors=True)
    write_notes("faults", "\n\n".join(notes))
    assert not failures, "\n\n".join(failures)


def write_notes(name, text):
    """What the diagnosis printed, kept beside the runs for the notes (runs/diagnose/NAME.txt)."""
    DIAGNOSE_RUNS.mkdir(parents=True, exist_ok=True)
    (DIAGNOSE_RUNS / f"{name}.txt").write_text(text + "\n")
