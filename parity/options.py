"""The parity suite's command-line options. A plugin of the root conftest.py: pytest reads options only
from conftests it loads before parsing the command line, and it loads parity/conftest.py later when it
runs from the repository root (the test command's `pytest`).

The runs the options name are checked when the session starts (pytest_configure): a folder that is missing,
empty, a file, not a replay run of that side, or of other fixtures than the other side's is refused in one
line for each problem, with exit status 2, before any replay runs (it was an error page per test)."""

import hashlib
import json
import os
from pathlib import Path

import pytest

RUN_OPTIONS = {"python": "--python-run", "ruby": "--ruby-run"}
MAKES = {"python": "python reference_py/replay.py --out DIR", "ruby": "ruby ruby_port/bin/replay --out DIR"}


def pytest_addoption(parser):
    group = parser.getgroup("parity", "comparing replay runs made elsewhere")
    group.addoption("--python-run", default=os.environ.get("PARITY_PYTHON_RUN"), metavar="DIR",
                    help="a Python replay run directory (reference_py/replay.py --out DIR) to compare instead of "
                         "running the Python replay here")
    group.addoption("--ruby-run", metavar="DIR",
                    help="a Ruby replay run directory (ruby_port/bin/replay --out DIR) to compare instead of "
                         "running the Ruby replay here")


def run_info(side, path):
    """(run.json's content, None) of a replay run of `side` at `path`, or (None, what is wrong with it and the fix)."""
    option, fix = RUN_OPTIONS[side], f"give {RUN_OPTIONS[side]} the folder `{MAKES[side]}` wrote"
    folder = Path(path)
    if not folder.exists():
        return None, f"{option} {path}: not found; {fix}"
    if not folder.is_dir():
        return None, f"{option} {path} is a file, not a run directory; {fix}"
    if not any(folder.iterdir()):
        return None, f"{option} {path} is empty; {fix}"
    try:
        info = json.loads((folder / "run.json").read_text())
    except FileNotFoundError:
        return None, f"{option} {path} holds no run.json, so it is not a replay run; {fix}"
    except (OSError, ValueError) as error:
        return None, f"{option} {path}/run.json is not readable JSON ({' '.join(str(error).split())}); {fix}"
    if not (isinstance(info, dict) and isinstance(info.get("fixtures_manifest_sha256"), str)
            and isinstance(info.get("strategies"), list)):
        return None, f"{option} {path}/run.json is not a replay run's (no fixtures_manifest_sha256 or strategies); {fix}"
    if info.get("side") != side:
        return None, f"{option} {path} is a run of the {info.get('side')} side, not of {side}; {fix}"
    return info, None


def run_problems(given, strategies, fixtures):
    """One line per problem with the runs `given` (side -> path or None), as the session would use them."""
    problems, infos = [], {}
    for side, path in given.items():
        if path is None:
            continue
        info, problem = run_info(side, path)
        if problem:
            problems.append(problem)
            continue
        missing = [s for s in strategies if s not in info["strategies"]]
        if missing:
            problems.append(f"{RUN_OPTIONS[side]} {path} replayed {', '.join(info['strategies']) or 'no strategy'}, not "
                            f"{', '.join(missing)}; replay every strategy (or set PARITY_STRATEGIES to those it has)")
            continue
        infos[side] = info
    manifest = Path(fixtures) / "manifest.json"
    if len(infos) == 2:
        expected = {"ruby": (infos["python"]["fixtures_manifest_sha256"], f"those of {RUN_OPTIONS['python']} {given['python']}")}
    elif infos and manifest.is_file():  # the other side replays here, on these fixtures
        expected = {side: (hashlib.sha256(manifest.read_bytes()).hexdigest(), f"those in {fixtures}") for side in infos}
    else:
        expected = {}
    for side, (sha256, whose) in expected.items():
        found = infos[side]["fixtures_manifest_sha256"]
        if found != sha256:
            problems.append(f"{RUN_OPTIONS[side]} {given[side]} replayed other fixtures than {whose} (manifest sha256 "
                            f"{found[:12]}, not {sha256[:12]}); replay both sides on the same fixtures/")
    return problems


def pytest_configure(config):
    given = {side: config.getoption(option.lstrip("-").replace("-", "_")) for side, option in RUN_OPTIONS.items()}
    if not any(given.values()):
        return
    from parity.settings import FIXTURES, STRATEGIES

    problems = run_problems(given, STRATEGIES, FIXTURES)
    if problems:
        pytest.exit("\n".join(problems), returncode=2)
