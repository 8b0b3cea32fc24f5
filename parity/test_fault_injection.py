"""The suite catches a broken port: each test breaks a copy of ruby_port/ on purpose, runs the parity
suite against the copy (as a subprocess, the way a maintainer would), and asserts that it fails and
names the quantity that the fault changes."""

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import pytest

from parity.sides import ROOT
from reference_py import threads


@dataclass(frozen=True)
class Fault:
    name: str
    file: str          # inside ruby_port/
    pattern: str       # a regular expression that must match exactly once
    replacement: str
    tests: str         # which parity tests to run against the broken copy
    strategy: str
    expected: str      # the quantity the failure must name


FAULTS = [
    Fault("another momentum", "lib/hymenoptera/strategies.rb", r"momentum: momentum\b",
          "momentum: momentum * 0.5", "parity/test_replay.py", "feature_extractor",
          "training loss per step [epoch, step] differs [strategy=feature_extractor]"),
    Fault("a missing model.eval", "lib/hymenoptera/train.rb",
          r"(def evaluate\(model, criterion, data_loader, observer = NO_OBSERVER\)\n)\s*model\.eval\n",
          r"\1", "parity/test_replay.py", "feature_extractor",
          "eval logits differs [strategy=feature_extractor]"),
    Fault("a BatchNorm that shifts its input", "lib/hymenoptera/batch_norm2d.rb", r"(?m)^(\s*)super$",
          r"\1super(input + 1e-3)", "parity/test_replay.py", "feature_extractor",
          "first divergence in forward order: module bn1"),
    Fault("another default momentum", "lib/hymenoptera/train.rb", r"momentum: 0\.9, backbone_lr",
          "momentum: 0.89, backbone_lr", "parity/test_options.py", "finetune",
          "option momentum: python 0.9, ruby 0.89"),
    Fault("another default StepLR step", "lib/hymenoptera/train.rb", r"step_size: 7,", "step_size: 8,",
          "parity/test_options.py", "finetune", "option step_size: python 7, ruby 8"),
    Fault("another normalisation constant", "lib/hymenoptera/data.rb", r"STD = \[0\.229,",
          "STD = [0.239,", "parity/test_preprocessing.py", "finetune",
          "preprocessing: normalize (pixel levels) differs"),
]


def break_copy(fault, destination):
    port = destination / "ruby_port"
    shutil.copytree(ROOT / "ruby_port", port, ignore=shutil.ignore_patterns("test"))
    target = port / fault.file
    source = target.read_text()
    matches = re.findall(fault.pattern, source)
    assert len(matches) == 1, (
        f"fault '{fault.name}' cannot be applied: /{fault.pattern}/ matches {len(matches)} times in "
        f"ruby_port/{fault.file} (expected once); update FAULTS to the port's current code")
    target.write_text(re.sub(fault.pattern, fault.replacement, source))
    return port


def start_suite_against(fault, folder, python_run):
    """The parity suite (fault.tests) as a child process against a copy of the port with the fault in it."""
    port = break_copy(fault, folder)
    env = threads.subprocess_env()
    env.update(PARITY_RUBY_PORT=str(port), PARITY_RUNS=str(folder / "runs"), PARITY_STRATEGIES=fault.strategy,
               PARITY_REPORT=str(folder / "report"))
    if python_run is not None:
        env["PARITY_PYTHON_RUN"] = str(python_run.path)
    output = tempfile.TemporaryFile("w+")
    command = [sys.executable, "-m", "pytest", fault.tests, "-q", "-x", "-p", "no:cacheprovider"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True), output


@pytest.fixture(scope="module")
def outcomes(fixtures_dir, request, tmp_path_factory):
    """Every fault's child suite, all started at once: fault name -> (exit code, output)."""
    # the replay tests reuse this session's Python replay; the others need none
    python_run = request.getfixturevalue("python_run") if any(f.tests.endswith("test_replay.py") for f in FAULTS) else None
    children = {fault.name: start_suite_against(fault, tmp_path_factory.mktemp("fault"), python_run) for fault in FAULTS}
    results = {}
    for name, (process, output) in children.items():
        process.wait(timeout=1800)
        output.seek(0)
        results[name] = (process.returncode, output.read())
        output.close()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_suite_fails_naming_the_right_quantity(fault, outcomes):
    returncode, output = outcomes[fault.name]
    assert returncode == 1, f"the suite did not fail on '{fault.name}' (exit {returncode}):\n{output[-4000:]}"
    assert fault.expected in output, (
        f"the suite failed on '{fault.name}' but did not name '{fault.expected}':\n{output[-4000:]}")
