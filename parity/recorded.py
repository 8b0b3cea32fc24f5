"""How the diagnosis (parity/diagnose.py) compares one quantity of two recorded runs (parity/RUN_FORMAT.md):
the functions the recorded column of the table (parity/quantities.py) names, each
compare(pair, quantity, python event, ruby event, tolerance) -> [Comparison], where `pair` holds the two
runs (python, ruby: run_format's readers) and whether they share a stack (same), `quantity` the place
(label, place) and `tolerance` the row kind's. Tensors are compared key by key; what is not a tensor
(settings, orders, lists of names) must be equal, and a difference is told as a problem in words."""

import math

import torch

from parity.compare import Comparison, measure, measure_dict
from parity.tolerances import BIT_IDENTICAL, PREPROCESSING, for_quantity


def problem(quantity, text):
    result = Comparison(quantity=quantity.label, where=quantity.place, tolerance=BIT_IDENTICAL)
    result.problem = text
    return [result]


def agree(quantity):
    return Comparison(quantity=quantity.label, where=quantity.place, tolerance=BIT_IDENTICAL)


def tensors(pair, quantity, p, r, tolerance):
    """An event's tensors key by key, and its plain values (NaN equal to NaN)."""
    results = measure_dict(pair.ruby.tensors(r), pair.python.tensors(p), quantity=quantity.label,
                           tolerance=tolerance, **quantity.place)
    for name in sorted(set(p.get("values", {})) | set(r.get("values", {}))):
        a, b = p.get("values", {}).get(name), r.get("values", {}).get(name)
        if a != b and not (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
            results += problem(quantity, f"{name}: ruby {b!r}, python {a!r}")
    return results


def loader_settings(pair, quantity, p, r, tolerance):
    results = []
    for name in ("dataset_size", "batch_size", "shuffle", "num_workers", "drop_last"):
        if p.get(name) != r.get(name):
            results += problem(quantity, f"{name}: ruby {r.get(name)!r}, python {p.get(name)!r}")
    return results or [agree(quantity)]


def data_order(pair, quantity, p, r, tolerance):
    python = [i for event in p["indices"] for i in event["indices"]]
    ruby = [i for event in r["indices"] for i in event["indices"]]
    stopped = pair.ruby.end is None or pair.ruby.end.get("status") != "completed"
    if stopped and len(ruby) < len(python):
        python = python[:len(ruby)]  # the Ruby run stopped during this pass: what it drew
    if ruby == python:
        return [agree(quantity)]
    first = next((k for k, (a, b) in enumerate(zip(ruby, python)) if a != b), min(len(ruby), len(python)))
    batch = _batch_of(p["indices"], first)
    shown = lambda order: "[" + ", ".join(map(str, order[first:first + 8])) + (", …" if len(order) > first + 8 else "") + "]"
    text = (f"from position {first} (batch {batch}): ruby {shown(ruby)}, python {shown(python)}"
            f" ({len(ruby)} indices in ruby, {len(python)} in python"
            + ("; the same indices in another order" if sorted(ruby) == sorted(python) else "") + ")")
    return problem(quantity, text)


def _batch_of(index_events, position):
    seen = 0
    for event in index_events:
        seen += len(event["indices"])
        if position < seen:
            return event["batch"]
    return index_events[-1]["batch"] + 1 if index_events else 0


def compose(pair, quantity, p, r, tolerance):
    if p["transforms"] == r["transforms"]:
        return [agree(quantity)]
    missing = [name for name in p["transforms"] if name not in r["transforms"]]
    extra = [name for name in r["transforms"] if name not in p["transforms"]]
    text = f"ruby {r['transforms']}, python {p['transforms']}"
    if missing:
        text += f": {', '.join(missing)} left out"
    if extra:
        text += f": {', '.join(extra)} added"
    return problem(quantity, text)


def transform(pair, quantity, p, r, tolerance):
    """A transform's output: pixels (uint8) bit for bit on any stack, like the preprocessing's; floats at the
    kind's tolerance."""
    uint8 = all(t.dtype == torch.uint8 for t in pair.python.tensors(p).values())
    return tensors(pair, quantity, p, r, PREPROCESSING if uint8 or pair.same else for_quantity("inputs", False))


def modules(pair, quantity, p, r, tolerance):
    results = []
    if p.get("modules") != r.get("modules"):
        missing = [m for m in p.get("modules", []) if m not in r.get("modules", [])]
        extra = [m for m in r.get("modules", []) if m not in p.get("modules", [])]
        text = "the models' modules differ"
        if missing:
            text += f"; ruby's model has no {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else "")
        if extra:
            text += f"; only ruby's has {', '.join(extra[:5])}" + (" …" if len(extra) > 5 else "")
        if not missing and not extra:
            text += " in order"
        results += problem(quantity, text + ": module outputs are compared by name")
    return results or [agree(quantity)]


def optimizer(pair, quantity, p, r, tolerance):
    """The optimizer's settings per parameter group, how often the schedulers had stepped, and its state."""
    results = []
    if len(p["groups"]) != len(r["groups"]):
        results += problem(quantity, f"{len(r['groups'])} parameter groups in ruby, {len(p['groups'])} in python")
    for g, (a, b) in enumerate(zip(p["groups"], r["groups"])):
        for name in sorted(set(a) & set(b)):
            if a[name] != b[name]:
                results += problem(quantity, f"group {g} {name}: ruby {b[name]!r}, python {a[name]!r}")
    if p.get("scheduler_steps") != r.get("scheduler_steps"):
        results += problem(quantity, f"the schedulers had stepped {r.get('scheduler_steps')} time(s) in ruby by "
                                     f"then, {p.get('scheduler_steps')} in python")
    state = measure_dict(pair.ruby.tensors(r), pair.python.tensors(p), quantity="optimizer state",
                         tolerance=tolerance, **quantity.place)
    return results + state


def scheduler(pair, quantity, p, r, tolerance):
    """When the scheduler stepped, its settings, and the learning rates it set."""
    results = []
    if p.get("step") != r.get("step"):
        results += problem(quantity, f"the scheduler stepped after {r.get('step')} optimizer steps in ruby, "
                                     f"{p.get('step')} in python")
    settings_p, settings_r = p.get("settings", {}), r.get("settings", {})
    for name in sorted(set(settings_p) & set(settings_r)):
        if settings_p[name] != settings_r[name] and name != "last_epoch":
            results += problem(quantity, f"{p.get('class')}'s {name}: ruby {settings_r[name]!r}, python {settings_p[name]!r}")
    results.append(measure(torch.tensor(r["lrs"], dtype=torch.float64), torch.tensor(p["lrs"], dtype=torch.float64),
                           quantity="learning rates", tolerance=tolerance, **quantity.place))
    return results
