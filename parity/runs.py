"""Reading the runs the suite compares, the same for either side: a replay run directory (the layout in
fixtures/README.md) and a trainer's free run; each seen per strategy as a Side of parity/quantities.py's
Pair (bundle(name), summary())."""

import json
from functools import cached_property
from pathlib import Path

from parity.quantities import Pair
from reference_py.tensor_io import read_bundle, read_index


class Run:
    def __init__(self, path):
        self.path = Path(path)
        self._bundles = {}

    @cached_property
    def info(self):
        return json.loads((self.path / "run.json").read_text())

    def summary(self, strategy):
        return json.loads((self.path / strategy / "summary.json").read_text())

    def bundle(self, strategy, name):
        """A bundle's tensors, mapped from its file (read_bundle): the suite reads each once, to compare it."""
        key = (strategy, name)
        if key not in self._bundles:
            self._bundles[key] = read_bundle(self.path / strategy / name, mapped=True)
        return self._bundles[key]

    def bundle_meta(self, strategy, name):
        """A bundle's meta, from its index (its tensors, when compared, are checked against the index's sha256)."""
        return read_index(self.path / strategy / name)["meta"]

    def has_steps(self):
        """Whether the run recorded the state after every step (replay --record-steps)."""
        return all((self.path / strategy / "steps" / "after_0.json").is_file() for strategy in self.info["strategies"])

    def steps(self, strategy):
        """The names of the recorded steps (after_0, after_1, ...), in order."""
        return [f"after_{k}" for k in range(len(list((self.path / strategy / "steps").glob("after_*.json"))))]

    def epochs(self, strategy):
        return [entry["epoch"] for entry in self.summary(strategy)["epochs"]]

    def of(self, strategy):
        return StrategyRun(self, strategy)


class StrategyRun:
    """One strategy of a replay run, as a Side: its bundles and its summary.json."""

    def __init__(self, run, strategy):
        self.run, self.strategy = run, strategy

    def bundle(self, name):
        return self.run.bundle(self.strategy, name)

    @cached_property
    def _summary(self):
        return self.run.summary(self.strategy)

    def summary(self):
        return self._summary


class FreeRun:
    """What one side's trainer wrote for one strategy, as a Side: its record/ bundles and curves.json."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.curves = json.loads((self.folder / "curves.json").read_text())

    def bundle(self, name):
        return read_bundle(self.folder / "record" / name, mapped=True)

    def summary(self):
        return self.curves


def free_pair(ruby, python):
    """Two trainers' FreeRuns of one strategy; bit-identical expected when they report the same LibTorch and threads."""
    return Pair("free", ruby, python, same_stack=same_stack(python.curves["stack"], ruby.curves["stack"]),
                where={"strategy": python.curves["strategy"]})


def same_stack(python_info, ruby_info):
    """True when both sides ran the same LibTorch file with the same thread count."""
    return (
        python_info.get("libtorch_library") is not None
        and python_info.get("libtorch_library") == ruby_info.get("libtorch_library")
        and python_info.get("libtorch") == ruby_info.get("libtorch")
        and python_info.get("threads") == ruby_info.get("threads")
    )


class Replays:
    """The two replays compared and, across stacks, the reference's floor run: the Python replay run
    again on the port's stack settings, whose divergence from the reference is the noise floor."""

    def __init__(self, python, ruby, floor=None):
        self.python, self.ruby, self.floor = python, ruby, floor
        self.same_stack = same_stack(python.info, ruby.info)
        self.resync = None  # across stacks: Replays of the resynchronised runs (ruby, and the floor's), if any

    def bundles(self, strategy, name):
        """(ruby, python, floor or None) of one bundle."""
        floor = self.floor.bundle(strategy, name) if self.floor else None
        return self.ruby.bundle(strategy, name), self.python.bundle(strategy, name), floor

    def pair(self, strategy):
        """One strategy of the replays, as parity/quantities.py's table reads it."""
        return Pair("replay", self.ruby.of(strategy), self.python.of(strategy),
                    self.floor.of(strategy) if self.floor else None, self.same_stack, {"strategy": strategy})
