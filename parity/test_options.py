"""Options parity: the trainers users run, invoked with their defaults, resolve every option alike.

Each trainer prints its resolved configuration (every option and its value, defaults included; the
same JSON it writes as config.json beside its curves) with --print-config. A port whose default
momentum, StepLR step or gamma drifted from the tutorial's trains differently from the first step.
"""

import json

import pytest

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
