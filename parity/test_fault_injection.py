"""The suite catches a broken port: each test breaks a copy of ruby_port/ on purpose, runs the parity
suite against the copy (`python -m pytest` in a child process, the way a maintainer would; forked from a
server that imported LibTorch once, parity/fork_server.py, and running the copy's entry points through a
Ruby one, which loaded the bundle and LibTorch once), and asserts that it fails and names the quantity
that the fault changes.

Across stacks too: against a reference replayed at another thread count (SIDE_THREADS + 1), the
port as it is passes, and the faults are still caught, located by epoch, step and module.

And on the paths only data shaped like the real hymenoptera_data takes (a partial last batch, a tie in
val accuracy, a best epoch before the last): loops that mishandle them, named by the replay and by the
free-running trainers (extended; `pytest parity -m data_paths`)."""

import functools
import re
import shutil
from dataclasses import dataclass

import pytest

from parity.conftest import fixtures_ready, floor_commands, floor_threads, manifest_sha256
from parity.fork_server import ForkServer, run_each
from parity.runs import Run
from parity.test_free_running import free_data, free_run_commands, python_free_runs
from parity.test_options import python_default_config
from parity.test_preprocessing import python_standin, standin_outputs
from parity.settings import STRATEGIES
from parity.sides import ROOT, SIDE_THREADS, python, run_together, session_server, start_served
from reference_py import threads


@dataclass(frozen=True)
class Fault:
    name: str
    file: str          # inside ruby_port/
    pattern: str       # a regular expression that must match exactly once
    replacement: str
    tests: str         # which parity tests to run against the broken copy
    strategy: str
    expected: str | None  # the quantity the failure must name; None: no fault, the suite must pass
    across_stacks: bool = False  # against a reference of another thread count (OTHER_STACK_THREADS)


OTHER_STACK_THREADS = SIDE_THREADS + 1
PARALLEL_CHILDREN = 4  # each child runs up to three replays at once: more would crowd memory
PRELOADED = ("torch", "torchvision", "pytest")  # the children's imports that read no PARITY_* variable
ACROSS_STACKS_STRATEGY = "feature_extractor"
FAULTS = [
    Fault("another momentum", "lib/hymenoptera/strategies.rb", r"momentum: momentum\b",
          "momentum: momentum * 0.5", "parity/test_replay.py", "feature_extractor",
          "training loss per step [epoch, step] differs [strategy=feature_extractor]"),
    Fault("a missing model.eval", "lib/hymenoptera/train.rb",
          r"(def evaluate\(model, criterion, data_loader, observer = NO_OBSERVER\)\n)\s*model\.eval\n",
          r"\1", "parity/test_replay.py", "feature_extractor",
          "eval logits differs [strategy=feature_extractor]"),
    Fault("a BatchNorm that shifts its input", "lib/pytorch_parity/torch/nn/batch_norm2d.rb", r"(?m)^(\s*)super$",
          r"\1super(input + 1e-3)", "parity/test_replay.py", "feature_extractor",
          "first divergence in forward order: module bn1"),
    Fault("another default momentum", "lib/hymenoptera/recipe.rb", r'"momentum" => Setting\.new\(type: "float", default: 0\.9,',
          '"momentum" => Setting.new(type: "float", default: 0.89,', "parity/test_options.py", "finetune",
          "option momentum: python 0.9, ruby 0.89"),
    Fault("another default StepLR step", "lib/hymenoptera/recipe.rb", r'"step_size" => Setting\.new\(type: "int", default: 7,',
          '"step_size" => Setting.new(type: "int", default: 8,',
          "parity/test_options.py", "finetune", "option step_size: python 7, ruby 8"),
    Fault("another normalisation constant", "lib/hymenoptera/data.rb", r"STD = \[0\.229,",
          "STD = [0.239,", "parity/test_preprocessing.py::test_every_stand_in_image_is_bit_identical[normalize]",
          "finetune",
          "preprocessing: normalize (pixel levels) differs"),
    Fault("none, across stacks", None, None, None, "parity/test_replay.py parity/test_resync.py",
          ACROSS_STACKS_STRATEGY, None, across_stacks=True),
    Fault("another momentum, across stacks", "lib/hymenoptera/strategies.rb", r"momentum: momentum\b",
          "momentum: momentum * 0.5", "parity/test_resync.py", ACROSS_STACKS_STRATEGY,
          "first divergence after resynchronising every step: epoch 0, step 1, state/fc.weight of module fc",
          across_stacks=True),
    Fault("a BatchNorm that shifts its input, across stacks", "lib/pytorch_parity/torch/nn/batch_norm2d.rb", r"(?m)^(\s*)super$",
          r"\1super(input + 1e-3)", "parity/test_resync.py", ACROSS_STACKS_STRATEGY,
          "first divergence after resynchronising every step: epoch 0, step 0, state/bn1.running_mean of module bn1",
          across_stacks=True),
]

# Loops that agree with the reference on data that never takes the paths the real data takes
# (parity/data_paths.py): each must be named by the replay and by the free-running trainers, whose data
# takes every such path (test_the_data_takes_every_path_the_real_data_takes in both). Extended: each
# child replays or trains both sides itself.
DATA_PATH_STRATEGY = "feature_extractor"  # in both sets its val accuracy ties and its best epoch is not the last
AT = f"[strategy={DATA_PATH_STRATEGY}"
# name, pattern in lib/hymenoptera/train.rb, replacement, what the replay names, what the free-running trainers name
DATA_PATH_BUGS = [
    ("train loss weighted by the batch size, not the batch's (partial last batch)",
     r"(?s)(def train_one_epoch\b.*?running_loss \+= loss\.item \* )inputs\.size\(0\)", r"\g<1>4",
     f"train_loss differs {AT}, epoch=0]", f"free-running train_loss differs {AT}, epoch=0]"),
    ("val loss weighted by the batch size, not the batch's (partial last batch)",
     r"(?s)(def evaluate\b.*?running_loss \+= loss\.item \* )inputs\.size\(0\)", r"\g<1>4",
     f"val_loss differs {AT}, epoch=0]", f"free-running val_loss differs {AT}, epoch=0]"),
    ("a tie taken as a new best (tie in val accuracy)", r"record\[:val_acc\] > best_acc", "record[:val_acc] >= best_acc",
     f"best epoch (-1: none) differs {AT}]", f"free-running best epoch (-1: none) differs {AT}]"),
    ("the last weights returned, not the best (best epoch before the last)", r"model\.load_state_dict\(best_model_wts\)",
     "nil # the best weights are never loaded", f"best state dict differs {AT}", f"free-running best weights differs {AT}"),
]
DATA_PATH_FAULTS = [
    Fault(f"{name}, {suite}", "lib/hymenoptera/train.rb", pattern, replacement, tests, DATA_PATH_STRATEGY, expected)
    for name, pattern, replacement, *named in DATA_PATH_BUGS
    for suite, tests, expected in zip(("replay", "free-running"),
                                      ("parity/test_replay.py", "parity/test_free_running.py"), named)
]


def break_copy(fault, destination):
    port = destination / "ruby_port"
    shutil.copytree(ROOT / "ruby_port", port, ignore=shutil.ignore_patterns("test"))
    if fault.file is None:
        return port
    target = port / fault.file
    source = target.read_text()
    matches = re.findall(fault.pattern, source)
    assert len(matches) == 1, (
        f"fault '{fault.name}' cannot be applied: /{fault.pattern}/ matches {len(matches)} times in "
        f"ruby_port/{fault.file} (expected once); update FAULTS to the port's current code")
    target.write_text(re.sub(fault.pattern, fault.replacement, source))
    return port


def start_suite_against(server, fault, folder, python_run, shared=None, ruby_run=None):
    """The parity suite (fault.tests) as a child process of the fork server against a copy of the port with the
    fault in it, comparing with `python_run` (a Run, or None to replay Python in the child); `shared`: more of the
    Python side's runs, made once for every child (PARITY_* variables, parity/settings.py); `ruby_run`: the port's
    plain replay, made already (--ruby-run; only for a copy without a fault). Its output: folder/output."""
    port = break_copy(fault, folder)
    env = dict(server.env, PARITY_RUBY_PORT=str(port), PARITY_RUNS=str(folder / "runs"), PARITY_STRATEGIES=fault.strategy,
               PARITY_REPORT="none", PARITY_FIXTURES_CHECKED=manifest_sha256(), **(shared or {}))
    if python_run is not None:
        env["PARITY_PYTHON_RUN"] = str(python_run.path)
    command = ["-m", "pytest", *fault.tests.split(), "-q", "-x", "-p", "no:cacheprovider"]
    if ruby_run is not None:
        assert fault.file is None, f"'{fault.name}' breaks the port: its replay must be made in its child"
        command += ["--ruby-run", str(ruby_run.path)]
    return server.start(command, env, folder / "output")


def run_children(server, faults, reference, tmp_path_factory, shared=None, ruby_runs=None):
    """Each fault's child suite against `reference`, PARALLEL_CHILDREN at a time: name -> (exit code, output). The
    children are forked by `server` (python_side), and import this project's modules, which read their PARITY_*
    variables, themselves. `ruby_runs`: fault name -> the port's replay made already, for a child without a fault."""
    fixtures_ready()  # checked here, once for every child
    folders = {fault.name: tmp_path_factory.mktemp("fault") for fault in faults}
    jobs = run_each([functools.partial(start_suite_against, server, fault, folders[fault.name], reference, shared,
                                       (ruby_runs or {}).get(fault.name))
                     for fault in faults], PARALLEL_CHILDREN, timeout=1800)
    return {fault.name: (job.returncode, (folders[fault.name] / "output").read_text()) for fault, job in zip(faults, jobs)}


@pytest.fixture(scope="module")
def python_side():
    """The Python fork server that forks every child session of the module: it imported LibTorch, torchvision and
    pytest once (parity/fork_server.py); a server for each group of children paid that start again (3.5 CPU-s)."""
    with ForkServer.python(PRELOADED, threads.subprocess_env(), ROOT) as server:
        yield server


@pytest.fixture(scope="module")
def ruby_side():
    """The Ruby fork server (parity/fork_server.rb) that the child sessions run the port's entry points through
    (PARITY_RUBY_SERVER, parity/sides.py): each loads the broken copy's code in a process forked after the bundle,
    LibTorch and torchvision loaded, once for all (a replay of feature_extractor 7.3 -> 5.3 CPU-s); the session's
    (parity/sides.py's session_server), whose socket they connect to."""
    return {"PARITY_RUBY_SERVER": str(session_server("Ruby").socket_path)}


def shared_python_config(faults, tmp_path_factory):
    """train.py --print-config's output, made once here for the children that compare options (test_options.py's
    python_default_config: this session's, forked by its Python server), as PARITY_PYTHON_CONFIG; each child ran
    train.py as a process of its own, which loaded LibTorch (2.3 CPU-s)."""
    if not any("parity/test_options.py" in fault.tests.split() for fault in faults):
        return {}
    path = tmp_path_factory.mktemp("python_config") / "config.json"
    path.write_text(python_default_config())
    return {"PARITY_PYTHON_CONFIG": str(path)}


def shared_python_standin(faults, tmp_path_factory):
    """The Python side's stand-in bundle, made once here for the children that compare preprocessing outputs of the
    stand-in images alone (test_preprocessing.py's python_standin, forked by this session's Python server), as
    PARITY_PYTHON_PREPROCESSED."""
    outputs = {fault.name: standin_outputs(fault.tests.split()) for fault in faults
               if any(test.startswith("parity/test_preprocessing.py") for test in fault.tests.split())}
    if not outputs or None in outputs.values() or len({tuple(o) for o in outputs.values()}) > 1:
        return {}
    folder = tmp_path_factory.mktemp("python_standin")
    start_served(python_standin(folder, next(iter(outputs.values())))).wait()
    return {"PARITY_PYTHON_PREPROCESSED": str(folder)}


@pytest.fixture(scope="module")
def one_stack_outcomes(python_run, tmp_path_factory, python_side, ruby_side):
    """The one-stack faults' child suites, reusing this session's Python replay and Python configuration."""
    faults = [f for f in FAULTS if not f.across_stacks]
    return run_children(python_side, faults, python_run, tmp_path_factory,
                        {**ruby_side, **shared_python_config(faults, tmp_path_factory),
                         **shared_python_standin(faults, tmp_path_factory)})


def session_python_run(request, strategy):
    """This session's Python replay (conftest's python_run) when the session makes it anyway (a selected test uses it:
    the one-stack faults, test_replay.py), here (no --python-run), with `strategy`; else None: for the extended tests
    alone, a replay of every strategy would cost more than the run of one it replaces."""
    if (request.config.getoption("python_run") or strategy not in STRATEGIES
            or not any("replay_runs" in item.fixturenames for item in request.session.items)):
        return None
    return request.getfixturevalue("python_run")


def session_ruby_run(request, strategy):
    """This session's Ruby replay of the port as it is (conftest's replay_runs), when the session makes it anyway, here,
    with `strategy` (session_python_run; no --ruby-run); else None."""
    if request.config.getoption("ruby_run") or session_python_run(request, strategy) is None:
        return None
    return request.getfixturevalue("replay_runs").ruby


@pytest.fixture(scope="module")
def across_stacks_outcomes(fixtures_dir, tmp_path_factory, request, python_side, ruby_side):
    """The across-stacks cases' child suites, against a reference replayed at another thread count with its
    steps recorded. The child without a fault takes the port's plain replay from this session when it made one (the
    port as it is, on this stack: the same run its child would make)."""
    other_stack = tmp_path_factory.mktemp("other_stack") / "python"
    replay_args = ["--fixtures", fixtures_dir, "--strategy", ACROSS_STACKS_STRATEGY]
    run_together(python("replay.py", *replay_args, "--record-steps", "--out", other_stack, thread_count=OTHER_STACK_THREADS))
    reference = Run(other_stack)
    # the reference's floor runs, which every child would make alike: made once, here, by the children's own code;
    # the floor run (the reference replayed on the port's stack) is this session's Python replay when it has one
    floor, floor_runs = floor_threads(reference.info, {"threads": SIDE_THREADS}), other_stack.parent / "floor"
    run_together(*floor_commands(reference, floor, replay_args, floor_runs, session_python_run(request, ACROSS_STACKS_STRATEGY)))
    faults = [f for f in FAULTS if f.across_stacks]
    ruby_run = session_ruby_run(request, ACROSS_STACKS_STRATEGY)
    ruby_runs = {f.name: ruby_run for f in faults if f.file is None and ruby_run is not None}
    return run_children(python_side, faults, reference, tmp_path_factory,
                        {"PARITY_PYTHON_FLOOR_RUNS": str(floor_runs), **ruby_side}, ruby_runs)


@pytest.fixture(scope="module")
def data_path_outcomes(fixtures_dir, tmp_path_factory, request, python_side, ruby_side):
    """The data paths' faults' child suites, the replay's against this session's Python replay, or one of
    DATA_PATH_STRATEGY made here when the session makes none (session_python_run); the free-running ones against
    one Python training, each training its broken Ruby side: test_free_running.py's when this session trains it
    anyway (python_free_runs: the same command, on the same set), else made here."""
    folder = tmp_path_factory.mktemp("data_paths_reference")
    reference = session_python_run(request, DATA_PATH_STRATEGY)
    # the Python trainer, which each free-running child would train alike: trained once, with their own code
    free_runs = python_free_runs(request.session, DATA_PATH_STRATEGY)
    commands = []
    if free_runs is None:
        free_runs = folder / "free"
        commands = free_run_commands(free_runs, free_data(free_runs), [DATA_PATH_STRATEGY], sides=("python",))
    if reference is None:
        commands.append(python("replay.py", "--fixtures", fixtures_dir, "--strategy", DATA_PATH_STRATEGY,
                               "--out", folder / "python"))
    run_together(*commands)
    return run_children(python_side, DATA_PATH_FAULTS, reference or Run(folder / "python"), tmp_path_factory,
                        {"PARITY_PYTHON_FREE_RUNS": str(free_runs), **ruby_side})


def assert_verdict(fault, outcome):
    returncode, output = outcome
    if fault.expected is None:
        assert returncode == 0, f"the suite failed on the port as it is ({fault.name}, exit {returncode}):\n{output[-4000:]}"
        return
    assert returncode == 1, f"the suite did not fail on '{fault.name}' (exit {returncode}):\n{output[-4000:]}"
    assert fault.expected in output, (
        f"the suite failed on '{fault.name}' but did not name '{fault.expected}':\n{output[-4000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("fault", [f for f in FAULTS if not f.across_stacks], ids=lambda f: f.name)
def test_suite_names_each_fault(fault, one_stack_outcomes):
    assert_verdict(fault, one_stack_outcomes[fault.name])


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.across_stacks
@pytest.mark.parametrize("fault", [f for f in FAULTS if f.across_stacks], ids=lambda f: f.name)
def test_across_stacks_the_port_passes_and_each_fault_is_located(fault, across_stacks_outcomes):
    assert_verdict(fault, across_stacks_outcomes[fault.name])


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.data_paths
@pytest.mark.parametrize("fault", DATA_PATH_FAULTS, ids=lambda f: f.name)
def test_suite_names_each_fault_only_the_real_datas_paths_reveal(fault, data_path_outcomes):
    assert_verdict(fault, data_path_outcomes[fault.name])
