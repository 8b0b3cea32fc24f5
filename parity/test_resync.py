"""Across stacks, step by step: each side's replay resynchronised to the reference before every step.

Across stacks a free run drifts (another reduction order changes the last bits, SGD carries them on).
So the port replays once more starting every step from the reference's recorded state after the step
before (`replay --resync`), and so does the reference on the floor run's stack: each step's error is
then its own. A faithful port stays within the multiple of the reference's own one-step floor at
every step; the first step that does not is the first real divergence, named by epoch, step,
quantity and module. On one stack the replay is compared bit for bit already (test_replay.py).
"""

import pytest

from parity.compare import check, judge_dict


def module_of(key):
    """The module a training-state entry belongs to: "state/layer1.0.bn1.running_mean" -> "layer1.0.bn1"."""
    if key == "loss":
        return "(the step's loss)"
    return key.split("/", 1)[1].rsplit(".", 1)[0]


def first_divergence(comparisons):
    failing = next((c for c in comparisons if not c.passed), None)
    if failing is None:
        return None
    where = failing.where
    return (f"first divergence after resynchronising every step: epoch {where['epoch']}, step {where['step']}, "
            f"{where['key']} of module {module_of(where['key'])}")


def test_every_step_from_the_references_state(strategy, resync_runs, recorder):
    if resync_runs.same_stack:
        pytest.skip("both runs share one stack: test_replay.py compares every step bit for bit")
    resync = resync_runs.resync
    if resync is None:
        pytest.skip(f"the reference run {resync_runs.python.path} recorded no steps: make it with "
                    f"`python reference_py/replay.py --record-steps` to compare across stacks step by step")
    comparisons = []
    for name in resync.python.steps(strategy):
        ruby, python, floor = resync.bundles(strategy, f"steps/{name}")
        where = resync.python.bundle_meta(strategy, f"steps/{name}")
        comparisons += judge_dict(ruby, python, floor, kind="step", same_stack=False,
                                  quantity="training state after one resynchronised step", strategy=strategy,
                                  epoch=where["epoch"], step=where["step"])
    assert comparisons, f"no recorded steps for {strategy}"
    divergence = first_divergence(comparisons)
    if divergence:
        next(c for c in comparisons if not c.passed).notes.insert(0, divergence)
    check(comparisons, recorder)
