"""Model summaries: `python -m reference_py.summary` and `ruby_port/bin/summary` print the same torchinfo-style
table (every module's name and type, output shape, parameter count, trainable or not; the totals) for the
model of every strategy, row for row. The VGG-16 extractor is summarised at the (1, 3, 244, 244) input its
recipe inspects it with, the ResNet-18 strategies at the summary's default."""

import json
import subprocess
import sys

import pytest

from parity.compare import Comparison, check
from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command, ruby, start_served
from parity.tolerances import BIT_IDENTICAL
from reference_py.strategies import STRATEGIES

pytestmark = [pytest.mark.extended]

INPUT_SIZES = {"vgg16_feature_extractor": (1, 3, 244, 244)}


def input_args(strategy):
    size = INPUT_SIZES.get(strategy)
    return [] if size is None else ["--input-size", *map(str, size)]


@pytest.fixture(scope="module")
def summaries():
    """{strategy: (ruby lines, python lines)}, every side run at once, each forked by the session's server of its
    language (parity/sides.py's session_server), which loaded LibTorch and torchvision once: as processes of their
    own, the ten paid that start and their teardown (36.9 CPU-s in all, loaded)."""
    commands = []
    for strategy in STRATEGIES:
        commands.append(ruby("summary", "--strategy", strategy, *input_args(strategy)))
        commands.append(Command("Python", [sys.executable, "-m", "reference_py.summary", "--strategy", strategy,
                                           *input_args(strategy)]))
    outputs = start_served(*commands).wait()
    return {strategy: (outputs[2 * i].splitlines(), outputs[2 * i + 1].splitlines())
            for i, strategy in enumerate(STRATEGIES)}


def compare_rows(ruby_lines, python_lines, strategy):
    """One Comparison for the whole table, naming the first row that differs."""
    result = Comparison(quantity="model summary", where={"strategy": strategy}, tolerance=BIT_IDENTICAL,
                        numel=len(python_lines))
    for row, (r, p) in enumerate(zip(ruby_lines, python_lines)):
        if r != p:
            result.problem = f"first differing row {row}: ruby {r!r}, python {p!r}"
            return result
    if len(ruby_lines) != len(python_lines):
        result.problem = f"ruby prints {len(ruby_lines)} rows, python {len(python_lines)}"
    return result


def test_summary_rows(strategy_name, summaries, recorder):
    ruby_lines, python_lines = summaries[strategy_name]
    assert any("Total params" in line for line in python_lines), "the Python summary printed no totals"
    check(compare_rows(ruby_lines, python_lines, strategy_name), recorder)


def pytest_generate_tests(metafunc):
    if "strategy_name" in metafunc.fixturenames:
        metafunc.parametrize("strategy_name", STRATEGIES)


def test_the_smallest_sides_are_torchvisions():
    """Both summaries check --input-size before torchvision loads, against SMALLEST_SIDES written out (summary.py,
    summary.rb): each must be torchvision's min_size, in the meta of the backbone's ImageNet weights."""
    import torchvision

    from reference_py.recipe import STRATEGY_TABLE
    from reference_py.summary import SMALLEST_SIDES

    code = ('require "hymenoptera/cli"; require "hymenoptera/summary"; '
            'puts JSON.generate(Hymenoptera::Summary::SMALLEST_SIDES)')
    command = Command("Ruby", ["ruby", "-I", str(RUBY_PORT / "lib"), "-e", code])
    completed = subprocess.run(command.argv, cwd=ROOT, env=command.env(), capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    meta = {arch: max(torchvision.models.get_model_weights(arch).IMAGENET1K_V1.meta["min_size"])
            for arch in sorted({row.architecture for row in STRATEGY_TABLE.values()})}
    assert SMALLEST_SIDES == meta
    assert json.loads(completed.stdout) == meta
