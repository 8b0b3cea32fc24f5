"""Options parity: the trainers users run, invoked with their defaults, resolve every option alike; and the
suite's own options (--python-run, --ruby-run) are checked when the session starts.

Each trainer prints its resolved configuration (every option and its value, defaults included; the
same JSON it writes as config.json beside its curves) with --print-config. A port whose default
momentum, StepLR step or gamma drifted from the tutorial's trains differently from the first step.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from parity.settings import ROOT, STRATEGIES
from parity.sides import python, rake, ruby, run_together

# Options whose defaults differ on purpose, and why.
BY_DESIGN = {"out_dir": "each side writes under its own folder (runs/train/python, runs/train/ruby)"}


@pytest.fixture(scope="module")
def default_configs():
    outputs = run_together(python("train.py", "--print-config"), ruby("train", "--print-config"),
                           rake("train", print_config=1))
    return dict(zip(("python", "ruby_port/bin/train", "rake train"), map(json.loads, outputs)))


def differing_options(python_config, ruby_config):
    names = sorted(set(python_config) | set(ruby_config))
    return [f"{name}: python {python_config.get(name, '(missing)')!r}, ruby {ruby_config.get(name, '(missing)')!r}"
            for name in names if name not in BY_DESIGN and python_config.get(name, "(missing)") != ruby_config.get(name, "(missing)")]


@pytest.mark.parametrize("invocation", ["ruby_port/bin/train", "rake train"])
def test_default_invocation_resolves_every_option_as_python(invocation, default_configs):
    python_config = default_configs["python"]
    assert len(python_config) >= 15, f"python's configuration lists only {sorted(python_config)}"
    differing = differing_options(python_config, default_configs[invocation])
    assert not differing, (f"`{invocation}` with its defaults and `python reference_py/train.py` resolve "
                           f"{len(differing)} option(s) differently: option " + "; option ".join(differing))


# --- the suite's own inputs: --python-run and --ruby-run, checked when the session starts ---------------------

def replay_run(folder, side, fixtures_sha256="0" * 64):
    """A folder with the run.json of a replay of every strategy the suite compares."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"side": side, "fixtures_manifest_sha256": fixtures_sha256,
                                                 "strategies": STRATEGIES}))
    return folder


def empty_folder(folder):
    folder.mkdir()
    return folder


def a_file(path):
    path.write_text("a run\n")
    return path


def trainer_output(folder):
    """A folder of another format: a trainer's curves, no run.json."""
    folder.mkdir()
    (folder / "curves.json").write_text("{}")
    return folder


RUN_CASES = {  # name: (the suite's options, made in a temporary folder; the fragments of each line on stderr)
    "missing": (lambda tmp: ["--python-run", tmp / "nowhere"], [["--python-run {tmp}/nowhere: not found"]]),
    "empty": (lambda tmp: ["--ruby-run", empty_folder(tmp / "empty")], [["--ruby-run {tmp}/empty is empty"]]),
    "a file": (lambda tmp: ["--python-run", a_file(tmp / "run.txt")],
               [["--python-run {tmp}/run.txt is a file, not a run directory"]]),
    "another format": (lambda tmp: ["--python-run", trainer_output(tmp / "curves")],
                       [["--python-run {tmp}/curves holds no run.json, so it is not a replay run"]]),
    "the other side's run": (lambda tmp: ["--python-run", replay_run(tmp / "ruby", "ruby")],
                             [["--python-run {tmp}/ruby is a run of the ruby side, not of python"]]),
    "other fixtures": (lambda tmp: ["--python-run", replay_run(tmp / "py", "python", "a" * 64),
                                    "--ruby-run", replay_run(tmp / "rb", "ruby", "b" * 64)],
                       [["--ruby-run {tmp}/rb replayed other fixtures than those of --python-run {tmp}/py",
                         "(manifest sha256 bbbbbbbbbbbb, not aaaaaaaaaaaa)"]]),
    "two problems": (lambda tmp: ["--python-run", tmp / "nowhere", "--ruby-run", empty_folder(tmp / "empty")],
                     [["--python-run {tmp}/nowhere: not found"], ["--ruby-run {tmp}/empty is empty"]]),
}


@pytest.fixture(scope="module")
def refused_runs(tmp_path_factory):
    """pytest on this module, collecting only, with each case's options (the check comes before collection)."""
    def run(name):
        tmp = tmp_path_factory.mktemp(name.replace(" ", "_"))
        args = [str(arg) for arg in RUN_CASES[name][0](tmp)]
        env = {k: v for k, v in os.environ.items() if k != "PARITY_PYTHON_RUN"}
        completed = subprocess.run([sys.executable, "-m", "pytest", __file__, "--collect-only", "-q", "-p", "no:cacheprovider",
                                    *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        return completed, tmp
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(RUN_CASES, pool.map(run, RUN_CASES)))


@pytest.mark.extended
@pytest.mark.bad_input
@pytest.mark.parametrize("name", RUN_CASES)
def test_a_run_the_suite_cannot_use_is_refused_at_the_start_in_one_line(name, refused_runs):
    completed, tmp = refused_runs[name]
    assert completed.returncode == 2, f"exit {completed.returncode}; stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    lines = completed.stderr.splitlines()
    expected = [[fragment.format(tmp=tmp) for fragment in line] for line in RUN_CASES[name][1]]
    assert len(lines) == len(expected), f"expected {len(expected)} line(s) on stderr:\n{completed.stderr}"
    for line, fragments in zip(lines, expected):
        for fragment in fragments + ["; "]:
            assert fragment in line, f"{fragment!r} not in: {line}"
        assert "replay" in line.split("; ", 1)[1], f"no fix in: {line}"
    assert completed.stdout == "", completed.stdout
