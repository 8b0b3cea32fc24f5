"""Every quantity the parity suite compares between two runs, once: what its failure message calls it,
how each kind of run records it, its tolerance (parity/tolerances.py's key) and how it is compared.

The kinds of run (the table's columns, `reads`):
  replay    the replays of the fixtures (parity/test_replay.py, and the VGG-16 extractor's)
  free      the trainers' free runs: their curves.json and record/ bundles (parity/test_free_running.py,
            and the VGG-16 extractor's)
  recorded  runs recorded by parity.record and pytorch_parity/record, event by event (parity/RUN_FORMAT.md),
            whatever program made them: the diagnosis (parity/diagnose.py)
The replays and the free runs are read through one interface for a pair of runs, Pair: one Side per run
(the Ruby run, the Python run and across stacks the reference's floor run), each with bundle(NAME) and
summary() (a replay's summary.json, a trainer's curves.json); a recorded run holds a quantity in its
events (Event: which events, where they are, how they are compared: parity/recorded.py). Every user
iterates this table (`of(run)`, `recorded_events()`); none keeps a list of its own, and a row added here
is compared by all (parity/test_quantities.py).

How a row is compared: its value is a tensor (judged at its kind's tolerance: bit-identical on one stack,
across stacks within a multiple of the floor run's own difference, parity/compare.py), or a mapping
name -> tensor compared key by key (`by_key`), or one of these per epoch (`per_epoch`); `on_any_stack`:
exact whatever the stacks (a model's shape).
"""

import re
from dataclasses import dataclass, field
from typing import Callable

import torch

from parity import recorded
from parity.compare import Comparison, judge, judge_dict
from parity.divergence import first_divergence
from parity.tolerances import BIT_IDENTICAL, for_quantity

RUNS = ("replay", "free")  # the columns a Pair reads (the recorded runs' is read event by event)
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


@dataclass(frozen=True)
class Quantity:
    name: str  # what a replay's message calls it; a free run's is "free-running " + (free_name or name)
    kind: str  # its tolerance: parity/tolerances.py's key
    reads: dict  # run -> how to read one side's value from a Side (the runs that do not record it: absent)
    free_name: str | None = None
    by_key: bool = False
    per_epoch: bool = False  # reads give [(epoch, value)], compared epoch by epoch at the reference's epochs
    required: bool = False  # the reference must have recorded some (an empty mapping proves nothing)
    on_any_stack: bool = False  # exact on any stack, no floor run
    explain: dict = field(default_factory=dict)  # run -> (trace bundle, what a failure means when every module agrees)
    # by_key, per_epoch, required, on_any_stack and explain: how a Pair's runs are compared; a recorded run's
    # Event says how its events are

    def called(self, run):
        return f"free-running {self.free_name or self.name}" if run == "free" else self.name

    def ident(self):
        """A test id: the name in words and underscores."""
        return re.sub(r"\W+", "_", self.name).strip("_")


@dataclass(frozen=True)
class Event:
    """How a recorded run holds a quantity: in its events of `kind` (or of `kinds`, the run format's, when the
    quantity gathers several), told apart by key(event); for people, a label (the row's name when None), the
    group its divergences are listed in, the stream it flows in (parity/diagnose.py's UPSTREAM) and its
    place(key, event); compared by compare (parity/recorded.py). label and group: a text, or (key, event) -> text."""
    kind: str
    group: object
    stream: str
    label: object = None
    key: Callable = lambda event: ()
    place: Callable = lambda key, event: {}
    compare: Callable = recorded.tensors
    kinds: tuple = ()


@dataclass
class Pair:
    """Two runs of one program compared by the table: `run` is its column; ruby, python and floor (the
    reference run again on the port's stack, or None) are Sides, with bundle(name) and summary();
    `where` locates every comparison (the strategy)."""
    run: str
    ruby: object
    python: object
    floor: object = None
    same_stack: bool = True
    where: dict = field(default_factory=dict)


# --- how a row reads one side ---

def entry(bundle, key):
    return lambda side: side.bundle(bundle)[key]


def bundle(name):
    return lambda side: side.bundle(name)


def summary_value(key, dtype=torch.float64, none=None):
    """summary()[key] as a tensor (`none` standing for a null)."""
    def read(side):
        value = side.summary()[key]
        return torch.tensor(none if value is None else value, dtype=dtype)
    return read


def each_epoch(key):
    """Every epoch's summary()["epochs"][k][key], as float64."""
    return lambda side: [(e["epoch"], torch.tensor(e[key], dtype=torch.float64)) for e in side.summary()["epochs"]]


def state_each_epoch(side):
    return [(e["epoch"], side.bundle(f"state_epoch_{e['epoch']}")) for e in side.summary()["epochs"]]


def train_order_each_epoch(side):
    return list(enumerate(torch.tensor(order) for order in side.summary()["data_order"]["train"]))


def param_count(part):
    return lambda side: torch.tensor(side.summary()["param_counts"][part])


def at(key, event):
    """Where a recorded event happened: its loader, pass and batch."""
    where = event.get("at") or {}
    return {"loader": where.get("loader"), "pass": where.get("pass"), "batch": where.get("batch")} if where else {}


def loader_of(event):
    return (event["loader"],)


def the_loader(key, event):
    return {"loader": key[1]}


def transforms_of(key, event):
    return f"transforms [loader {key[1]}]"


def transform_label(key, event):
    return "the loaded image (the Compose's input)" if key[2] == 0 else f"output of {event.get('transform')}"


def optimizer_key(event):
    return ("after_step",) if "after_step" in event else (event.get("scheduler"), event.get("scheduler_step"))


def optimizer_place(key, event):
    return {"step": 1} if key[1] == "after_step" else {"scheduler step": key[2], "step": event.get("step")}


# --- the table, in the order the reference computes them (a failing run is named by the first) ---

QUANTITIES = [
    Quantity("loader settings", "counts", {"recorded": Event(
        "loader", lambda key, event: f"loader {key[1]}", "data", key=loader_of, place=the_loader,
        compare=recorded.loader_settings)}),
    Quantity("training order", "counts", {"free": train_order_each_epoch, "recorded": Event(
        "order", "data order", "data", label="data order", key=lambda event: (event["loader"], event["pass"]),
        place=lambda key, event: {"loader": key[1], "pass": key[2]}, compare=recorded.data_order,
        kinds=("pass", "indices"))}, per_epoch=True),
    Quantity("the first sample's Compose", "counts", {"recorded": Event(
        "compose", transforms_of, "data", key=loader_of, place=the_loader, compare=recorded.compose)}),
    Quantity("the first sample through each transform", "inputs", {"recorded": Event(
        "transform", transforms_of, "data", label=transform_label, key=lambda event: (event["loader"], event["position"]),
        place=lambda key, event: {"loader": key[1], "sample": 0, "transform": f"{key[2]} ({event.get('transform')})"},
        compare=recorded.transform)}),
    Quantity("first batch", "inputs", {"recorded": Event(
        "batch", "batches", "data", key=loader_of, place=lambda key, event: {"loader": key[1], "pass": 0, "batch": 0})}),
    Quantity("the model's modules", "counts", {"recorded": Event("model", "model", "settings", compare=recorded.modules)}),
    Quantity("parameters and buffers at the first forward", "state", {"recorded": Event("initial_state", "initial state",
                                                                                        "model")}),
    Quantity("first batch (decoded, cropped, resampled, flipped, normalized)", "inputs",
             {"free": bundle("first_batch"), "recorded": Event(
                 "model_input", "model input", "model", label="the batch as it enters the model", place=at)}, by_key=True),
    Quantity("eval logits", "logits", {"replay": entry("eval_logits", "logits"), "recorded": Event(
        "eval_output", "eval", "model", label="the model's output on the first eval batch", place=at)},
             explain={"replay": ("trace_eval", "the modules compute alike and the difference lies in how the logits "
                                               "pass ran (the model's mode, no-grad, batching)")}),
    Quantity("eval predictions", "predictions", {"replay": summary_value("eval_predictions", torch.int64)}),
    Quantity("module output (eval mode, first batch)", "trace", {"replay": bundle("trace_eval")}, by_key=True),
    Quantity("module output (train mode, first batch)", "trace", {"replay": bundle("trace_train"), "recorded": Event(
        "module_output", "module outputs", "model", label=lambda key, event: f"output of {key[1]} ({event.get('class')})",
        key=lambda event: (event["module"],), place=lambda key, event: {"module": key[1], "forward": "first"})},
             by_key=True),
    Quantity("the model's output", "logits", {"recorded": Event("model_output", "model output", "model", place=at)}),
    Quantity("buffers after the first forward", "state", {"recorded": Event("buffers_after_forward", "buffers", "model")}),
    Quantity("the first eval batch as it enters the model", "inputs", {"recorded": Event("eval_input", "eval", "model",
                                                                                         place=at)}),
    Quantity("training loss per step [epoch, step]", "loss", {**dict.fromkeys(RUNS, entry("step_losses", "step_losses")),
                                                              "recorded": Event(
        "loss", "losses", "model", label="loss", key=lambda event: (event["backward"],),
        place=lambda key, event: {**at(key, event), "step": event.get("step")})},
             explain={"replay": ("trace_train", "the first forward pass agrees and the difference comes from a training "
                                                "step (backward or optimizer): see the first mismatched [epoch, step] above")}),
    Quantity("gradient after the first backward", "gradients", {
        **dict.fromkeys(RUNS, bundle("grads_step1")), "recorded": Event(
        "gradients", "gradients", "model", label="gradients after the first backward", place=at)}, by_key=True),
    Quantity("optimizer settings and state", "momentum", {"recorded": Event(
        "optimizer", "optimizer", "model",
        label=lambda key, event: "optimizer after the first step" if key[1] == "after_step" else "optimizer state",
        key=optimizer_key, place=optimizer_place, compare=recorded.optimizer)}),
    Quantity("SGD momentum buffer after the first step", "momentum", dict.fromkeys(RUNS, bundle("momentum_step1")),
             by_key=True, required=True),
    Quantity("SGD momentum buffer at the end", "momentum", dict.fromkeys(RUNS, bundle("momentum_last")),
             by_key=True, required=True),
    Quantity("state dict after epoch", "state", {"replay": state_each_epoch}, by_key=True, per_epoch=True),
    Quantity("learning rate per parameter group", "lr", {**dict.fromkeys(RUNS, each_epoch("lr")), "recorded": Event(
        "scheduler", "learning rates", "schedule", label="learning rates",
        key=lambda event: (event["scheduler"], event["scheduler_step"]),
        place=lambda key, event: {"scheduler step": key[2], "step": event.get("step")}, compare=recorded.scheduler)},
             per_epoch=True, free_name="learning rate"),
    *[Quantity(metric, "metrics", dict.fromkeys(RUNS, each_epoch(metric)), per_epoch=True) for metric in METRICS],
    Quantity("best epoch (-1: none)", "counts", dict.fromkeys(RUNS, summary_value("best_epoch", torch.int64, none=-1))),
    Quantity("best val accuracy", "metrics", dict.fromkeys(RUNS, summary_value("best_acc"))),
    Quantity("best state dict", "state", {"replay": bundle("state_best"), "free": bundle("best_state")}, by_key=True,
             free_name="best weights"),
    *[Quantity(f"{part} parameter count", "counts", {"replay": param_count(part)}, on_any_stack=True)
      for part in ("trainable", "frozen", "total")],
]


def of(run):
    """The rows a run of this kind records, in the table's order."""
    return [q for q in QUANTITIES if run in q.reads]


def recorded_events():
    """The recorded runs' event kinds (each Event's kind, and the run format's kinds it gathers) -> (row, Event)."""
    return {kind: (q, q.reads["recorded"]) for q in QUANTITIES if "recorded" in q.reads
            for kind in (q.reads["recorded"].kind, *q.reads["recorded"].kinds)}


def ident(quantity):
    return quantity.ident()


def compare(quantity, pair):
    """The Comparisons of one quantity of a pair of runs (a failure explained by the trace where the row says)."""
    read, name = quantity.reads[pair.run], quantity.called(pair.run)
    same_stack = pair.same_stack or quantity.on_any_stack
    ruby, python = read(pair.ruby), read(pair.python)
    floor = read(pair.floor) if pair.floor is not None and not same_stack else None
    if quantity.required and not python:
        return [_problem(name, pair.where, "the python run recorded none")]
    judged = judge_dict if quantity.by_key else judge
    if not quantity.per_epoch:
        results = _listed(judged(ruby, python, floor, kind=quantity.kind, same_stack=same_stack, quantity=name,
                                 **pair.where))
    elif len(ruby) != len(python):
        return [_problem(name, pair.where, f"epochs: ruby ran {len(ruby)}, python {len(python)}")]
    else:
        results = []
        for (_, r), (epoch, p), (_, f) in zip(ruby, python, floor or [(None, None)] * len(python)):
            results += _listed(judged(r, p, f, kind=quantity.kind, same_stack=same_stack, quantity=name,
                                      **pair.where, epoch=epoch))
    if pair.run in quantity.explain:
        explain(results, pair, *quantity.explain[pair.run])
    return results


def explain(comparisons, pair, trace, when_all_agree):
    """Attach the first module of the pair's TRACE whose output differs to the first failing comparison, if any."""
    failing = next((c for c in comparisons if not c.passed), None)
    if failing is not None:
        failing.notes.append(first_divergence(pair.ruby.bundle(trace), pair.python.bundle(trace),
                                              for_quantity("trace", pair.same_stack), when_all_agree))


def _listed(comparisons):
    return comparisons if isinstance(comparisons, list) else [comparisons]


def _problem(name, where, text):
    result = Comparison(quantity=name, where=where, tolerance=BIT_IDENTICAL)
    result.problem = text
    return result
