"""Options parity: the trainers users run, invoked with their defaults, resolve every option alike; and the
suite's own options (--python-run, --ruby-run) are checked when the session starts.

Each trainer prints its resolved configuration (every option and its value, defaults included; the
same JSON it writes as config.json beside its curves) with --print-config. A port whose default
momentum, StepLR step or gamma drifted from the tutorial's trains differently from the first step.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from parity.fork_server import ForkServer, run_each
from parity.settings import PYTHON_CONFIG, ROOT, STRATEGIES
from parity.sides import Command, python, rake, ruby, session_server, start_served, start_together

# Options whose defaults differ on purpose, and why.
BY_DESIGN = {"out_dir": "each side writes under its own folder (runs/train/python, runs/train/ruby)"}


INVOCATIONS = {"python": python("train.py", "--print-config"), "ruby_port/bin/train": ruby("train", "--print-config"),
               "rake train": rake("train", print_config=1)}


def python_default_config():
    """`python reference_py/train.py --print-config`'s output: PYTHON_CONFIG when a parent session made it (the
    fault-injection children, whose faults are in the port alone), else run here."""
    if PYTHON_CONFIG is not None:
        return PYTHON_CONFIG.read_text()
    return start_served(INVOCATIONS["python"]).wait()[0]


@pytest.fixture(scope="module")
def default_configs():
    """Each invocation's resolved configuration, by name, made when a test first reads it: a session that stops at
    the first failure (-x, the fault-injection children) starts no invocation it does not compare. train.py and
    bin/train are forked by the session's servers (parity/sides.py's session_server), which loaded LibTorch, as
    --print-config does to report its thread count; `rake train` runs as users run it, a process of its own."""
    @functools.cache
    def config(name):
        if name == "python":
            return json.loads(python_default_config())
        command = INVOCATIONS[name]
        return json.loads((start_served if command.argv[0] == "ruby" else start_together)(command).wait()[0])
    return config


def differing_options(python_config, ruby_config):
    names = sorted(set(python_config) | set(ruby_config))
    return [f"{name}: python {python_config.get(name, '(missing)')!r}, ruby {ruby_config.get(name, '(missing)')!r}"
            for name in names if name not in BY_DESIGN and python_config.get(name, "(missing)") != ruby_config.get(name, "(missing)")]


@pytest.mark.parametrize("invocation", ["ruby_port/bin/train", "rake train"])
def test_default_invocation_resolves_every_option_as_python(invocation, default_configs):
    python_config = default_configs("python")
    assert len(python_config) >= 15, f"python's configuration lists only {sorted(python_config)}"
    differing = differing_options(python_config, default_configs(invocation))
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
    """pytest on this module, collecting only, with each case's options (the check comes before collection): each
    `python -m pytest ...` forked by a server that imported pytest once (parity/fork_server.py)."""
    env = {k: v for k, v in os.environ.items() if k != "PARITY_PYTHON_RUN"}
    folders = {name: tmp_path_factory.mktemp(name.replace(" ", "_")) for name in RUN_CASES}

    def start(server, name):
        args = [str(arg) for arg in RUN_CASES[name][0](folders[name])]
        return server.start(["-m", "pytest", __file__, "--collect-only", "-q", "-p", "no:cacheprovider", *args], env,
                            folders[name] / "stdout", errors=folders[name] / "stderr")
    with ForkServer.python(["pytest"], env, ROOT) as server:
        jobs = run_each([functools.partial(start, server, name) for name in RUN_CASES], 3, timeout=300)
    return {name: (subprocess.CompletedProcess(job.argv, job.returncode, (folders[name] / "stdout").read_text(),
                                               (folders[name] / "stderr").read_text()), folders[name])
            for name, job in zip(RUN_CASES, jobs)}


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


# --- the recipe: one table of settings and one of strategies per language, read by every entry point -----------

def describe_recipe(root):
    """Both languages' recipe tables under `root`, as plain data: (Python's, Ruby's)."""
    def run(argv):
        return json.loads(subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True, timeout=120).stdout)
    return run([sys.executable, "-m", "reference_py.recipe"]), run(["ruby", "ruby_port/lib/hymenoptera/recipe.rb"])


def test_the_recipe_tables_agree_across_languages():
    python_recipe, ruby_recipe = describe_recipe(ROOT)
    assert set(python_recipe["strategies"]) >= {"finetune", "feature_extractor", "backbone_lr", "scratch"}
    for table in ("settings", "strategies", "weights"):
        assert list(python_recipe[table]) == list(ruby_recipe[table]), f"{table}: the names or their order differ"
        differing = [f"{name}: python {python_recipe[table][name]}, ruby {ruby_recipe[table][name]}"
                     for name in python_recipe[table] if python_recipe[table][name] != ruby_recipe[table][name]]
        assert not differing, f"recipe.py and recipe.rb disagree on {table}: " + "; ".join(differing)
    assert python_recipe["weights_help"] == ruby_recipe["weights_help"]


# A strategy that is a row of the tables and nothing else: ResNet-18, every parameter at backbone_lr.
NEW_STRATEGY = "finetune_slow"
NEW_ROWS = {
    "reference_py/recipe.py": ('}\n\nSETTINGS = {', f'    "{NEW_STRATEGY}": Strategy("resnet18", True, "all", '
                               '(("trainable", "backbone_lr"),), "ResNet-18, all parameters at backbone_lr"),\n}\n\nSETTINGS = {'),
    "ruby_port/lib/hymenoptera/recipe.rb": ('\n    }.freeze\n\n    SETTINGS = {', f',\n      "{NEW_STRATEGY}" => Strategy.new('
                                            'architecture: "resnet18", pretrained: true, trains: "all", '
                                            'groups: [%w[trainable backbone_lr]], about: "ResNet-18, all parameters '
                                            'at backbone_lr")\n    }.freeze\n\n    SETTINGS = {'),
}
# And a setting whose default moves: SGD's momentum, 0.9 -> 0.8 (its replay value stays).
NEW_DEFAULT = {
    "reference_py/recipe.py": ('Setting("float", 0.9, "SGD\'s momentum"', 'Setting("float", 0.8, "SGD\'s momentum"'),
    "ruby_port/lib/hymenoptera/recipe.rb": ('default: 0.9, help: "SGD\'s momentum"', 'default: 0.8, help: "SGD\'s momentum"'),
}
BENCH_GROUPS = {
    "python": ["-c", f"import json; from bench import workload; print(json.dumps([g['lr'] for g in "
                     f"workload.build({NEW_STRATEGY!r})[1].param_groups]), workload.MOMENTUM)"],
    "ruby": ["-e", 'require "./bench/torch_setup"; require "./bench/workload"; '
                   f'puts "#{{JSON.generate(Workload.build({NEW_STRATEGY!r})[1].param_groups.map {{ |g| g[:lr] }})}} '
                   '#{Workload::MOMENTUM}"'],
}


@pytest.fixture(scope="module")
def copy_with_a_new_strategy(tmp_path_factory):
    """The code of the repository in a temporary folder, with NEW_STRATEGY added and the momentum's default
    changed in the two recipe files only; every entry point's answer about them, by name."""
    root = tmp_path_factory.mktemp("recipe") / "repo"
    skip = shutil.ignore_patterns("__pycache__", "tests", "test", "results")
    for folder in ("reference_py", "ruby_port/lib", "ruby_port/bin", "bench"):
        shutil.copytree(ROOT / folder, root / folder, ignore=skip)
    shutil.copy(ROOT / "Rakefile", root / "Rakefile")
    (root / "ruby_port/ext").symlink_to(ROOT / "ruby_port/ext")  # compiled by bin/setup
    for edits in (NEW_ROWS, NEW_DEFAULT):
        for path, (old, new) in edits.items():
            text = (root / path).read_text()
            assert text.count(old) == 1, f"{path} no longer has {old!r} once: update this test's edit"
            (root / path).write_text(text.replace(old, new))
    # the Python commands run in the environment of the session's Python server, which forks them (each imports from
    # the copy, its working folder); the Ruby ones in the same, with the copy on their load paths
    served_env = Command("Python", []).env()
    env = dict(served_env, PYTHONPATH=str(root), RUBYLIB=str(root / "ruby_port/lib"))
    py, rb = [sys.executable], ["ruby"]
    commands = {
        "train.py --help": py + ["reference_py/train.py", "--help"],
        "train.py --print-config": py + ["reference_py/train.py", "--strategy", NEW_STRATEGY, "--print-config"],
        "export_fixtures.py --help": py + ["reference_py/export_fixtures.py", "--help"],
        "export_fixtures' protocol": py + ["-c", "import json; from reference_py import export_fixtures as e, fixtures_format as f; "
                                                 "print(json.dumps({'strategies': e.STRATEGIES, 'protocol': f.PROTOCOL, "
                                                 f"'seeds': e.strategy_seeds(0, {NEW_STRATEGY!r})}}))"],
        "replay.py --help": py + ["reference_py/replay.py", "--help"],
        "pretrained.py --help": py + ["reference_py/pretrained.py", "--help"],
        "summary.py --strategy": py + ["-m", "reference_py.summary", "--strategy", NEW_STRATEGY],
        "summary.py finetune": py + ["-m", "reference_py.summary", "--strategy", "finetune"],
        "bench/workload.py": py + BENCH_GROUPS["python"],
        "bin/train --help": rb + ["ruby_port/bin/train", "--help"],
        "bin/train --print-config": rb + ["ruby_port/bin/train", "--strategy", NEW_STRATEGY, "--print-config"],
        "bin/replay --help": rb + ["ruby_port/bin/replay", "--help"],
        "FixturesFormat::PROTOCOL": rb + ["-e", 'require "./bench/torch_setup"; require "./ruby_port/lib/hymenoptera"; '
                                                'puts JSON.generate(Hymenoptera::FixturesFormat::PROTOCOL)'],
        "bin/summary --strategy": rb + ["ruby_port/bin/summary", "--strategy", NEW_STRATEGY],
        "rake -D": ["rake", "-D"],
        "bench/workload.rb": rb + BENCH_GROUPS["ruby"],
    }

    def run(argv):
        completed = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, f"{argv}: exit {completed.returncode}\n{completed.stderr}"
        return completed.stdout

    def folder(name):
        return root.parent / re.sub(r"[^A-Za-z0-9]+", "_", name)

    def start(server, name):
        folder(name).mkdir()
        return server.start(commands[name][1:], served_env, folder(name) / "stdout", errors=folder(name) / "stderr", cwd=root)

    def served(name, job):
        assert job.returncode == 0, f"{commands[name]}: exit {job.returncode}\n{(folder(name) / 'stderr').read_text()}"
        return (folder(name) / "stdout").read_text()

    # the Ruby commands, each a process of its own, one at a time beside the Python ones, which the session's Python
    # server (parity/sides.py's session_server), which imported LibTorch and torchvision once, runs as the interpreter
    # would (parity/fork_server.py): each command runs in the copy and imports from it. A server of the module's own for
    # them paid that start again (2.7 CPU-s)
    python_names = [name for name, argv in commands.items() if argv[0] == sys.executable]
    server = session_server("Python")
    with ThreadPoolExecutor(max_workers=1) as pool:
        others = {name: pool.submit(run, argv) for name, argv in commands.items() if name not in python_names}
        jobs = run_each([functools.partial(start, server, name) for name in python_names], 1, timeout=600)
        answers = {name: served(name, job) for name, job in zip(python_names, jobs)}
        answers.update((name, future.result()) for name, future in others.items())
    return {name: answers[name] for name in commands}


@pytest.mark.parametrize("entry_point", ["train.py --help", "export_fixtures.py --help", "replay.py --help",
                                         "pretrained.py --help", "bin/train --help", "bin/replay --help", "rake -D"])
def test_a_strategy_added_to_the_recipe_is_in_every_help(entry_point, copy_with_a_new_strategy):
    text = " ".join(copy_with_a_new_strategy[entry_point].split())
    assert NEW_STRATEGY in text, f"`{entry_point}` does not list {NEW_STRATEGY}:\n{text}"
    if entry_point.startswith(("train.py", "bin/train", "rake")):
        # the new default, and the help of the rate it trains at names it
        assert "0.8" in text, f"`{entry_point}` does not show the momentum's new default 0.8:\n{text}"
        if entry_point != "rake -D":
            assert f"(backbone_lr, {NEW_STRATEGY}) (default 0.0001)" in text, text
    if entry_point == "rake -D":
        summary_help = text.split("rake summary", 1)[1]
        assert NEW_STRATEGY in summary_help, f"rake summary's help does not list {NEW_STRATEGY}:\n{summary_help}"


def test_a_strategy_added_to_the_recipe_is_trained_by_both_trainers(copy_with_a_new_strategy):
    configs = {side: json.loads(copy_with_a_new_strategy[f"{side} --print-config"])
               for side in ("train.py", "bin/train")}
    for side, config in configs.items():
        assert config["strategy"] == NEW_STRATEGY and config["momentum"] == 0.8, f"{side}: {config}"
    assert not differing_options(*configs.values())


def test_a_strategy_added_to_the_recipe_is_in_the_fixtures_and_the_replay(copy_with_a_new_strategy):
    exported = json.loads(copy_with_a_new_strategy["export_fixtures' protocol"])
    assert exported["strategies"][-1] == NEW_STRATEGY, "a new row goes last: the other strategies keep their seeds"
    assert exported["protocol"] == json.loads(copy_with_a_new_strategy["FixturesFormat::PROTOCOL"])
    assert exported["protocol"]["momentum"] == 0.9, "the replay's momentum is its own value, not the default"


def test_a_strategy_added_to_the_recipe_builds_its_model_on_both_sides(copy_with_a_new_strategy):
    answers = copy_with_a_new_strategy
    # every parameter of ResNet-18 trains, as finetune's
    assert answers["summary.py --strategy"] == answers["bin/summary --strategy"] == answers["summary.py finetune"]
    for workload in ("bench/workload.py", "bench/workload.rb"):
        groups, momentum = answers[workload].split()
        assert json.loads(groups) == [0.0001] and float(momentum) == 0.8, f"{workload}: groups' lr {groups}, momentum {momentum}"
