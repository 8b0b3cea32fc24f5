"""Session set-up for the parity suite.

Builds the fixtures when missing or stale, runs the Python and the Ruby replay once each, for real,
with one thread setting, and collects every comparison for the report written at the end.

Environment (used by the fault-injection tests, which run this suite against a broken copy):
  PARITY_RUBY_PORT   a copy of ruby_port/ to test instead of ruby_port/
  PARITY_RUNS        where the replays write (default runs/parity)
  PARITY_STRATEGIES  comma-separated strategies to replay and compare (default: all four)
  PARITY_REPORT      where the report goes (default parity/report)
  PARITY_PYTHON_RUN  an existing Python replay of the same fixtures to compare with, instead of running one
"""

import os
from pathlib import Path

import pytest

from parity import known_divergences, report
from parity.sides import ROOT, python, ruby, run_together
from parity.runs import Run, same_stack

SIDES = {}  # each side's stack, as its own run recorded it
COMPARISONS = []
NOTES = []  # sentences for the report, e.g. how the free-running data orders differ
ALL_STRATEGIES = ["finetune", "feature_extractor", "backbone_lr", "scratch"]
STRATEGIES = [s for s in os.environ.get("PARITY_STRATEGIES", "").split(",") if s] or ALL_STRATEGIES
FIXTURES = ROOT / "fixtures"
RUNS = Path(os.environ.get("PARITY_RUNS") or ROOT / "runs" / "parity")
REPORT = Path(os.environ.get("PARITY_REPORT") or ROOT / "parity" / "report")


@pytest.fixture(scope="session")
def sides():
    """Each side's runtime description, added once its replay has run."""
    return SIDES


@pytest.fixture(scope="session")
def recorder():
    return COMPARISONS


@pytest.fixture(scope="session")
def report_notes():
    return NOTES


@pytest.fixture(scope="session")
def fixtures_dir():
    from reference_py.export_fixtures import ensure_fixtures

    ensure_fixtures(FIXTURES)
    return FIXTURES


def side_info(run):
    """A side's stack as its run recorded it (versions, LibTorch file, threads)."""
    return {k: v for k, v in run.info.items() if k not in ("strategies", "weights", "fixtures_manifest_sha256")}


@pytest.fixture(scope="session")
def replay_runs(fixtures_dir):
    """Both replays, run at the same time (or Python's reused from PARITY_PYTHON_RUN)."""
    reused = os.environ.get("PARITY_PYTHON_RUN")
    replay_args = ["--fixtures", fixtures_dir, "--strategy", *STRATEGIES]
    commands = [ruby("replay", *replay_args, "--out", RUNS / "ruby")]
    if not reused:
        commands.append(python("replay.py", *replay_args, "--out", RUNS / "python"))
    run_together(*commands)
    python_run, ruby_run = Run(reused or RUNS / "python"), Run(RUNS / "ruby")
    SIDES.update(python=side_info(python_run), ruby=side_info(ruby_run))
    python_fixtures = python_run.info.get("fixtures_manifest_sha256")
    ruby_fixtures = ruby_run.info.get("fixtures_manifest_sha256")
    assert python_fixtures == ruby_fixtures, (
        f"the two replays read different fixtures (manifest sha256 python {python_fixtures}, ruby {ruby_fixtures}): "
        f"nothing they computed is comparable; rerun both on the same fixtures/")
    return python_run, ruby_run


@pytest.fixture(scope="session")
def python_run(replay_runs):
    return replay_runs[0]


@pytest.fixture(scope="session")
def bit_identical_expected(replay_runs):
    python_run, ruby_run = replay_runs
    return same_stack(python_run.info, ruby_run.info)


def pytest_generate_tests(metafunc):
    if "strategy" in metafunc.fixturenames:
        metafunc.parametrize("strategy", STRATEGIES)


def pytest_sessionfinish(session):
    if COMPARISONS or SIDES:
        report.write(REPORT, COMPARISONS, SIDES, RUNS, known=known_divergences.MEASURED, notes=NOTES)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("parity environment")
    for name, info in SIDES.items():
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "side"))
    if COMPARISONS:
        failed = sum(not c.passed for c in COMPARISONS)
        terminalreporter.write_line(
            f"{len(COMPARISONS)} comparisons, {failed} outside tolerance; report: parity/report/index.md")
