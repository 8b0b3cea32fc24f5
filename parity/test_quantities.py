"""The table of compared quantities (parity/quantities.py): every user compares every row of its kind of
run (the replays, the free runs, the VGG-16 extractor's and the diagnosis of recorded runs), a row added to
the table included; and how a row is compared, on runs made here."""

import importlib.util

import pytest
import torch

from parity import diagnose, early, quantities
from parity.compare import ParityError, check
from parity.quantities import Event, Pair, Quantity
from parity.record import tensor_bytes
from parity.run_format import RunWriter, read_run
from parity.settings import ROOT

# each test that compares a pair of runs, and the table's column it reads
USERS = [("parity/test_replay.py", "test_quantity", "replay"),
         ("parity/test_free_running.py", "test_quantity", "free"),
         ("parity/test_vgg16_extractor.py", "test_vgg16_extractor_replay", "replay"),
         ("parity/test_vgg16_extractor.py", "test_vgg16_extractor_free_running", "free")]
ADDED = Quantity("an added quantity", "state", {**dict.fromkeys(quantities.RUNS, quantities.bundle("added")),
                                                 "recorded": Event("added_state", "added", "model")}, by_key=True)


def fresh_copy(path):
    """The test module at `path` imported anew (its parametrizations made from the table as it is now)."""
    spec = importlib.util.spec_from_file_location(f"fresh_copy_of_{path.replace('/', '_')[:-3]}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compared(test):
    """The rows a test is parametrized over."""
    return next(mark.args[1] for mark in test.pytestmark if mark.name == "parametrize" and mark.args[0] == "quantity")


@pytest.mark.parametrize("path, test, run", USERS, ids=[f"{p}::{t}" for p, t, _ in USERS])
def test_every_user_compares_a_row_added_to_the_table(path, test, run, monkeypatch):
    monkeypatch.setattr(quantities, "QUANTITIES", [*quantities.QUANTITIES, ADDED])
    monkeypatch.setattr(early, "STARTERS", dict(early.STARTERS))  # a fresh copy registers its early runs again
    rows = compared(vars(fresh_copy(path))[test])
    assert rows == quantities.of(run) and ADDED in rows, (
        f"{path}::{test} compares {[q.name for q in rows]}, not the table's rows for a {run} run")


def recorded_run(path, side, value):
    """A recorded run holding the added row's event, between the model and the end."""
    stack = {"libtorch_library": "/lib/libtorch_cpu.so", "threads": 1}
    writer = RunWriter(path, {"side": side, "script": "program", "stack": stack})
    writer.event("model", {"modules": ["fc"], "stack": stack})
    writer.event("added_state", {}, {"fc.weight": tensor_bytes(torch.full((2,), value))})
    writer.event("end", {"status": "completed", "backwards": 0, "pytorch_parity": [], "stack": stack})
    writer.close()
    return read_run(path)


def test_the_diagnosis_compares_a_row_added_to_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(quantities, "QUANTITIES", [*quantities.QUANTITIES, ADDED])
    result = diagnose.diagnose(recorded_run(tmp_path / "python", "python", 1.0), recorded_run(tmp_path / "ruby", "ruby", 2.0))
    assert [q.key for q, _ in result.compared] == [("model",), ("added_state",)]
    (divergence,) = result.divergences
    assert divergence.place() == "an added quantity"
    assert divergence.message().startswith("an added quantity differs [key=fc.weight]: 2 of 2 elements mismatched")


class Side:
    """One side's run in memory: bundles and a summary."""

    def __init__(self, summary=None, **bundles):
        self.bundles, self._summary = bundles, summary or {}

    def bundle(self, name):
        return self.bundles[name]

    def summary(self):
        return self._summary


def state(value):
    return {"fc.weight": torch.full((2, 3), value), "fc.bias": torch.zeros(2)}


@pytest.mark.parametrize("run", quantities.RUNS)
def test_a_row_is_compared_key_by_key_and_named_in_each_runs_words(run):
    pair = Pair(run, Side(added=state(1.5)), Side(added=state(1.0)), where={"strategy": "finetune"})
    comparisons = quantities.compare(ADDED, pair)
    assert [c.where["key"] for c in comparisons] == ["fc.weight", "fc.bias"]
    with pytest.raises(ParityError) as failure:
        check(comparisons)
    name = "free-running an added quantity" if run == "free" else "an added quantity"
    assert str(failure.value).startswith(f"{name} differs [strategy=finetune, key=fc.weight]: 6 of 6 elements mismatched")


def epochs(*values):
    return {"epochs": [{"epoch": k, "lr": [value]} for k, value in enumerate(values)]}


def test_per_epoch_rows_are_located_by_epoch_and_name_a_missing_epoch():
    lr = next(q for q in quantities.QUANTITIES if q.name == "learning rate per parameter group")
    pair = Pair("replay", Side(epochs(0.1, 0.02)), Side(epochs(0.1, 0.01)), where={"strategy": "scratch"})
    comparisons = quantities.compare(lr, pair)
    assert [(c.where["epoch"], c.passed) for c in comparisons] == [(0, True), (1, False)]
    short = quantities.compare(lr, Pair("free", Side(epochs(0.1)), Side(epochs(0.1, 0.01)), where={"strategy": "scratch"}))
    assert [c.message() for c in short] == [
        "free-running learning rate differs [strategy=scratch]: epochs: ruby ran 1, python 2"]


def test_a_required_row_the_reference_did_not_record_fails():
    momentum = next(q for q in quantities.QUANTITIES if q.name == "SGD momentum buffer at the end")
    empty = Pair("replay", Side(momentum_last={}), Side(momentum_last={}), where={"strategy": "finetune"})
    assert [c.message() for c in quantities.compare(momentum, empty)] == [
        "SGD momentum buffer at the end differs [strategy=finetune]: the python run recorded none"]


def test_across_stacks_the_floor_run_sets_the_bound_but_not_where_the_row_is_exact_on_any_stack():
    loss = next(q for q in quantities.QUANTITIES if q.name == "training loss per step [epoch, step]")
    losses = lambda value: Side(step_losses={"step_losses": torch.tensor([[0.5, value]], dtype=torch.float64)})
    pair = Pair("replay", losses(0.5003), losses(0.5), losses(0.5001), same_stack=False)
    assert [c.passed for c in quantities.compare(loss, pair)] == [True]  # within 8x the floor's 1e-4
    count = next(q for q in quantities.QUANTITIES if q.name == "total parameter count")
    counts = lambda total: Side({"param_counts": {"total": total}})
    assert [c.passed for c in quantities.compare(count, Pair("replay", counts(3), counts(3), counts(4), False))] == [True]
    assert [c.passed for c in quantities.compare(count, Pair("replay", counts(4), counts(3), counts(4), False))] == [False]


def test_a_failing_replay_row_names_the_first_module_of_its_trace_that_differs():
    logits = next(q for q in quantities.QUANTITIES if q.name == "eval logits")
    trace = lambda shift: {"conv1": torch.ones(2), "fc": torch.ones(2) + shift}
    side = lambda shift: Side(eval_logits={"logits": torch.ones(2) + shift}, trace_eval=trace(shift))
    failing = quantities.compare(logits, Pair("replay", side(1.0), side(0.0)))
    assert failing[0].notes[0].startswith("first divergence in forward order: module fc (")
