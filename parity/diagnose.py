"""Where a port first departs from its reference, and why:

    python -m parity.diagnose PY_RUN RB_RUN [--report DIR]

PY_RUN and RB_RUN are runs recorded by `python -m parity.record` and `pytorch_parity/record`
(parity/RUN_FORMAT.md). Every quantity both recorded is compared, in the order the reference computed it
(data order, transforms, batch, initial state, module outputs, loss, gradients, optimizer step, learning
rates, later steps), with the suite's one comparison (parity/compare.py) and tolerance table
(parity/tolerances.py): bit-identical when both ran the same LibTorch at the same thread count, the
fixed across-stacks bounds otherwise. The first divergence is printed with its place and, when it has
the signature of a known torch.rb/torchvision-ruby deviation (parity/deviations.py), that deviation and
the pytorch_parity file that removes it; every later one is a consequence (it lies downstream of an
earlier one) or independent. A Markdown report with the two loss curves overlaid goes beside the runs.

Exit status: 0 identical, 1 not, 2 bad input (one line on stderr).
"""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from parity import deviations, quantities, recorded
from parity.run_format import RunError, read_run
from parity.tolerances import for_quantity

# What flows into what: a divergence is a consequence when one came before it in a stream it depends on.
UPSTREAM = {
    "data": {"data"},
    "model": {"data", "model", "settings", "schedule"},
    "settings": {"settings"},
    "schedule": {"schedule", "settings"},
    "end": set(),
}


@dataclass
class Quantity:
    """One thing both runs may have recorded, in the reference's order."""
    key: tuple
    label: str  # what it is, for people
    group: str  # quantities listed together when their divergences are consequences
    stream: str  # UPSTREAM's key
    place: dict  # where: loader, pass, module, step...


@dataclass
class Divergence:
    quantity: Quantity
    comparisons: list  # the failing Comparisons (or one with the problem)
    match: deviations.Match = None
    number: int = 0
    cause: "Divergence" = None  # an earlier divergence this one follows from
    stop: bool = False  # the run stopped here

    def message(self):
        """The whole difference: the suite's comparison message (the first failing key, and how many more)."""
        problems = [c for c in self.comparisons if c.problem]
        numeric = [c for c in self.comparisons if not c.problem]
        texts = _problems(problems)
        if numeric:
            more = f" (and {len(numeric) - 1} more of its keys differ)" if len(numeric) > 1 else ""
            texts.append(numeric[0].message() + more)
        return "; ".join(texts)

    def brief(self):
        """The difference in a few words, for a consequence."""
        numeric = [c for c in self.comparisons if not c.problem]
        if self.stop or not numeric:
            text = self.message()
            return text if len(text) <= 160 else text[:157] + "..."
        c = numeric[0]
        keys = f" in {len(self.comparisons)} keys, the first" if len(self.comparisons) > 1 else ""
        key = f" {c.where['key']}" if "key" in c.where and len(self.comparisons) > 1 else ""
        return (f"differs{keys}{key}: {c.mismatched} of {c.numel} elements, greatest abs. difference "
                f"{c.max_abs:.3g}{c.tolerance.units()}")

    def place(self):
        where = describe_place(self.quantity.place)
        return f"{self.quantity.label} ({where})" if where else self.quantity.label


def _problems(comparisons, shown=3):
    """Each distinct problem once; one that several keys share, with how many and the first key."""
    by_text = {}
    for c in comparisons:
        by_text.setdefault(c.problem, []).append(c)
    texts = []
    for text, group in by_text.items():
        key = group[0].where.get("key")
        if len(group) > 1:
            texts.append(f"{len(group)} keys: {text} (the first {key})")
        else:
            texts.append(f"{key}: {text}" if key is not None else text)
    return texts[:shown] + ([f"and {len(texts) - shown} more"] if len(texts) > shown else [])


@dataclass
class Diagnosis:
    python: object
    ruby: object
    same_stack: bool
    compared: list = field(default_factory=list)  # (Quantity, [Comparison])
    divergences: list = field(default_factory=list)
    not_reached: list = field(default_factory=list)

    @property
    def identical(self):
        return not self.divergences

    def fixes(self):
        return self.ruby.fixes_loaded()


def describe_place(place):
    return ", ".join(f"{key} {value}" for key, value in place.items() if value is not None)


def same_stack(python, ruby):
    a, b = python.stack(), ruby.stack()
    return bool(a.get("libtorch_library")) and a.get("libtorch_library") == b.get("libtorch_library") and \
        a.get("threads") is not None and a.get("threads") == b.get("threads")


# --- the quantities, from a run's events ---

def keyed(run):
    """key -> event (or, for a pass's order, the list of its indices events) of every comparable event."""
    out, kinds = {}, quantities.recorded_events()
    for event in run.events:
        kind = event["kind"]
        key = event_key(event, kinds)
        if key is None:
            continue
        if kind == "indices":
            out.setdefault(key, {"indices": []})["indices"].append(event)
        elif kind == "pass":
            out.setdefault(key, {"indices": []})["pass"] = event
        else:
            out[key] = event
    return out


def event_key(event, kinds=None):
    """The key of the quantity an event holds (the table's Event: its kind and what tells its events apart), or None;
    `kinds`: quantities.recorded_events(), when the caller has it."""
    kind = event["kind"]
    if kind == "recorder_error":
        return (kind,)
    found = (kinds or quantities.recorded_events()).get(kind)
    if found is None:
        return None
    return (found[1].kind, *found[1].key(event))


def recorded_quantities(run):
    """The run's quantities in the order it recorded them (a pass's order at the pass's start)."""
    kinds = quantities.recorded_events()
    seen, out = set(), []
    for event in run.events:
        key = event_key(event, kinds)
        if key is None or key in seen or key[0] == "recorder_error":
            continue
        seen.add(key)
        out.append(quantity(key, event, kinds))
    return out


def quantity(key, event, kinds=None):
    """The quantity of `key` as the table's Event of its kind places it."""
    row, held = (kinds or quantities.recorded_events())[key[0]]
    text = lambda value: value(key, event) if callable(value) else value
    return Quantity(key, text(held.label) or row.name, text(held.group), held.stream, held.place(key, event))


# --- comparing one quantity ---

class Comparer:
    """The two recorded runs compared (the `pair` of parity/recorded.py's comparisons) and their events by key."""

    def __init__(self, python, ruby, same):
        self.python, self.ruby, self.same = python, ruby, same
        self.python_events, self.ruby_events = keyed(python), keyed(ruby)

    def compare(self, quantity):
        """The Comparisons of a quantity both runs recorded, as the table's row of its kind compares them."""
        row, event = quantities.recorded_events()[quantity.key[0]]
        return event.compare(self, quantity, self.python_events[quantity.key], self.ruby_events[quantity.key],
                             for_quantity(row.kind, self.same))


# --- the walk ---

def diagnose(python, ruby):
    same = same_stack(python, ruby)
    result = Diagnosis(python, ruby, same)
    comparer = Comparer(python, ruby, same)
    ruby_keys = set(comparer.ruby_events)
    stopped = None
    for q in recorded_quantities(python):
        if q.key not in ruby_keys:
            if stopped is None and ruby.end is not None and ruby.end.get("status") == "completed":
                result.divergences.append(Divergence(q, recorded.problem(q, f"recorded in python, not in ruby{missing_hint(q, ruby)}")))
                continue
            if stopped is None:
                stopped = stop_divergence(q, ruby, "ruby", comparer)
                result.divergences.append(stopped)
            result.not_reached.append(q)
            continue
        comparisons = comparer.compare(q)
        result.compared.append((q, comparisons))
        failing = [c for c in comparisons if not c.passed]
        if failing:
            result.divergences.append(Divergence(q, failing))
    python_keys = set(comparer.python_events)
    extra = [q for q in recorded_quantities(ruby) if q.key not in python_keys]
    if extra:
        if python.end is not None and python.end.get("status") != "completed":
            result.divergences.append(stop_divergence(extra[0], python, "python", comparer))
        else:
            q = extra[0]
            more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
            result.divergences.append(Divergence(q, recorded.problem(q, f"recorded in ruby, not in python{more}")))
    if stopped is None and not extra:
        # both recorded the same things, and one of them ended otherwise (an error after its last record)
        for side, run, other in (("ruby", ruby, python), ("python", python, ruby)):
            if run.end is None or (run.end.get("status") != "completed" and other.end is not None
                                   and other.end.get("status") == "completed"):
                end = Quantity(("end", side), "the end of the run", "end", "end", {})
                result.divergences.append(stop_divergence(end, run, side, comparer))
                break
    for side, events in (("ruby", comparer.ruby_events), ("python", comparer.python_events)):
        error = events.get(("recorder_error",))
        if error is not None:
            q = Quantity(("recorder_error", side), f"the {side} recorder", "recorder", "end", {})
            result.divergences.append(Divergence(q, recorded.problem(
                q, f"the {side} recorder failed and recorded nothing after: {error.get('class')}: {error.get('message')}")))
    classify(result, comparer)
    return result


def missing_hint(q, ruby):
    kind = q.key[0]
    if kind == "eval_input":
        return ": python's model ran in eval mode here, ruby's never did (a model.eval missing?)"
    if kind == "loss":
        return f": ruby made {ruby.end.get('backwards')} backward passes in all"
    if kind == "scheduler":
        return ": ruby's scheduler stepped fewer times"
    return ""


def stop_divergence(q, run, side, comparer):
    end = run.end
    if end is None:
        text = f"the {side} run ended here without a word (killed?): nothing after was recorded"
    elif end.get("status") == "exited":
        text = f"the {side} run exited with status {end.get('exit_status')} here"
    else:
        error = end.get("error", {})
        text = f"the {side} run stopped: {error.get('message')} ({error.get('class')}) at {error.get('where')}"
    label = f"the {side} run stopped after its last record" if q.key[0] == "end" else f"the {side} run stopped before {q.label}"
    where = Quantity(q.key, label, "end", "end", q.place)
    stop = Divergence(where, recorded.problem(where, text), stop=True)
    if side == "ruby" and end is not None and end.get("status") == "raised":
        stop.match = deviations.stopped(end.get("error", {}), run.fixes_loaded())
    return stop


# --- consequences, independents and signatures ---

def classify(result, comparer):
    fixes = result.fixes()
    for number, divergence in enumerate(result.divergences, 1):
        divergence.number = number
        if divergence.match is None and not divergence.stop:
            divergence.match = signature(divergence, comparer, fixes)
        upstream = UPSTREAM.get(divergence.quantity.stream, set())
        earlier = [d for d in result.divergences[:number - 1] if d.quantity.stream in upstream and not d.stop]
        if earlier and not (divergence.match and divergence.match.independent):
            divergence.cause = earlier[0]


def signature(divergence, comparer, fixes):
    q = divergence.quantity
    kind = q.key[0]
    p_events, r_events = comparer.python_events, comparer.ruby_events
    try:
        if kind == "order":
            return deviations.data_order(p_events[("loader", q.key[1])], r_events[("loader", q.key[1])], fixes)
        if kind == "loader" and any("dataset_size" in (c.problem or "") for c in divergence.comparisons):
            return deviations.dataset_size(p_events[q.key], r_events[q.key], fixes)
        if kind == "transform":
            return transform_signature(q, comparer, fixes)
        if kind == "scheduler":
            p, r = p_events[q.key], r_events[q.key]
            for ruby_lr, python_lr in zip(r["lrs"], p["lrs"]):
                if ruby_lr != python_lr:
                    return deviations.learning_rate(p.get("class"), ruby_lr, python_lr, fixes)
        if kind == "buffers_after_forward":
            keys = [c.where.get("key") for c in divergence.comparisons]
            before = comparer.ruby.tensors(r_events[("initial_state",)])
            match = deviations.batch_counts(keys, before, comparer.ruby.tensors(r_events[q.key]), fixes)
            if match is not None:  # the counts first: they are what the signature is about
                divergence.comparisons.sort(key=lambda c: not str(c.where.get("key")).endswith("num_batches_tracked"))
            return match
    except KeyError:
        return None
    return None


def transform_signature(q, comparer, fixes):
    loader, position = q.key[1], q.key[2]
    p_events, r_events = comparer.python_events, comparer.ruby_events
    p_out = comparer.python.tensors(p_events[q.key]).get("output")
    r_out = comparer.ruby.tensors(r_events[q.key]).get("output")
    if p_out is None or r_out is None:
        return None
    if position == 0:
        dataset = p_events.get(("loader", loader), {}).get("dataset")
        if p_out.dtype == r_out.dtype == torch.uint8 and p_out.dim() == r_out.dim() == 3:
            return deviations.loaded_image(p_out, r_out, dataset, fixes)
        return None
    previous = ("transform", loader, position - 1)
    p_in = _image(comparer.python.tensors(p_events[previous]).get("output")) if previous in p_events else None
    r_in = _image(comparer.ruby.tensors(r_events[previous]).get("output")) if previous in r_events else None
    name = p_events[q.key].get("transform")
    if _image(p_out) is None or _image(r_out) is None:
        return None
    return deviations.transform(name, p_in, p_out, r_in, r_out, fixes)


def _image(tensor):
    """An image as uint8 [height, width, bands], or None."""
    return tensor if tensor is not None and tensor.dtype == torch.uint8 and tensor.dim() == 3 else None


# --- what is printed ---

def summary_lines(result):
    python, ruby = result.python, result.ruby
    lines = [f"python run: {python.path} ({python.info.get('script')}); ruby run: {ruby.path} ({ruby.info.get('script')})"]
    a, b = python.stack(), ruby.stack()
    if result.same_stack:
        lines.append(f"both on {a.get('libtorch_library')} at {a.get('threads')} thread(s): every quantity must be bit-identical")
    else:
        lines.append(f"different stacks (python {a.get('libtorch_library')} at {a.get('threads')} thread(s), ruby "
                     f"{b.get('libtorch_library')} at {b.get('threads')}): the fixed across-stacks bounds apply "
                     f"(parity/tolerances.py; no floor was measured)")
    lines.append(f"ruby loaded pytorch_parity fixes: {describe_fixes(result.fixes())}")
    compared = sum(len(c) for _, c in result.compared)
    if result.identical:
        lines.append(f"identical: {len(result.compared)} quantities ({compared} comparisons) agree, "
                     f"{'bit for bit' if result.same_stack else 'within the bounds'}")
        return lines
    first = result.divergences[0]
    lines += ["", f"first divergence (#1): {first.place()}", f"  {first.message()}"]
    lines += match_lines(first.match, "  ")
    later = result.divergences[1:]
    if later:
        lines += ["", "later divergences:"]
        for entry in collapse(later):
            lines += [f"  {line}" for line in entry]
    if result.not_reached:
        groups = list(dict.fromkeys(q.group for q in result.not_reached))
        lines += ["", f"not compared: {len(result.not_reached)} quantities the stopped run never reached "
                      f"({', '.join(groups[:8])}{', …' if len(groups) > 8 else ''})"]
    lines.append(f"compared: {len(result.compared)} quantities ({compared} comparisons); {len(result.divergences)} divergences")
    return lines


def describe_fixes(fixes):
    if fixes is None:
        return "unknown (the run did not say)"
    room = deviations.fix_files()
    loaded = [f for f in fixes if f in room]
    if set(room) <= set(fixes):
        return f"all {len(room)} (-rpytorch_parity)"
    return ", ".join(loaded) if loaded else "none"


def match_lines(match, indent):
    if match is None:
        return [f"{indent}not the signature of a known torch.rb/torchvision-ruby deviation"]
    header = match.header()
    return [f"{indent}known deviation: {header.get('Fix', match.file)}",
            f"{indent}  upstream: {header.get('Bug', '(no header)')}",
            f"{indent}  seen here: {match.evidence}",
            f"{indent}  removed by: ruby_port/lib/pytorch_parity/{match.file} (bundle exec ruby -rpytorch_parity PORT.rb loads it)"]


def collapse(divergences):
    """Later divergences, a few lines each; consecutive consequences of one group in a single line."""
    entries, k = [], 0
    while k < len(divergences):
        d = divergences[k]
        run = [d]
        while (k + len(run) < len(divergences) and d.cause is not None and d.match is None
               and divergences[k + len(run)].quantity.group == d.quantity.group
               and divergences[k + len(run)].cause is d.cause and divergences[k + len(run)].match is None):
            run.append(divergences[k + len(run)])
        k += len(run)
        how = f"consequence of #{d.cause.number}" if d.cause is not None else "independent"
        if len(run) > 1:
            entries.append([f"#{d.number}-#{run[-1].number} {d.quantity.group}: {len(run)} quantities differ, from "
                            f"{d.place()} — {how}"])
        elif d.cause is not None:
            also = ""
            if d.match is not None and (d.cause.match is None or d.cause.match.file != d.match.file):
                also = f" (it also has the signature of ruby_port/lib/pytorch_parity/{d.match.file})"
            entries.append([f"#{d.number} {d.place()}: {d.brief()} — {how}{also}"])
        else:
            entries.append([f"#{d.number} {d.place()} — {how}:", f"  {d.message()}"] + match_lines(d.match, "  "))
    return entries


# --- the report beside the runs ---

def losses(run):
    return [(event["backward"], event.get("value")) for event in run.events
            if event["kind"] == "loss" and event.get("value") is not None]


def write_report(result, out):
    from parity import report
    from reference_py import atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"diagnosis-{result.python.path.name}-vs-{result.ruby.path.name}"
    figure = None
    series = {side: losses(run) for side, run in (("python", result.python), ("ruby", result.ruby))}
    if any(series.values()):
        figure = f"{stem}-losses.png"
        panels = [("loss at each backward", {side: ([x for x, _ in points], [y for _, y in points])
                                             for side, points in series.items() if points})]
        lrs = {side: ([e["step"] for e in run.events if e["kind"] == "scheduler"],
                      [e["lrs"][0] for e in run.events if e["kind"] == "scheduler" and e["lrs"]])
               for side, run in (("python", result.python), ("ruby", result.ruby))}
        if any(points[0] for points in lrs.values()):
            panels.append(("learning rate (x: optimizer steps)",
                           {side: points for side, points in lrs.items() if points[0]}))
        report._plot_pairs(out / figure, "python vs ruby, as recorded", panels)
    lines = ["# Diagnosis: the ruby run against the python run", "", "```", *summary_lines(result), "```", ""]
    lines += ["## Every quantity compared", "", "| quantity | compared | differ | greatest abs. difference | tolerance |",
              "|---|---|---|---|---|"]
    groups = {}
    for q, comparisons in result.compared:
        entry = groups.setdefault(q.group, [0, 0, 0.0, comparisons[0].tolerance.describe() if comparisons else ""])
        entry[0] += 1
        entry[1] += any(not c.passed for c in comparisons)
        entry[2] = max([entry[2]] + [c.max_abs for c in comparisons if not c.problem])
    for group, (count, differ, worst, tolerance) in groups.items():
        lines.append(f"| {group} | {count} | {differ} | {worst:.3g} | {tolerance} |")
    if result.divergences:
        lines += ["", "## Divergences, in the reference's order", ""]
        for d in result.divergences:
            how = f"consequence of #{d.cause.number}" if d.cause is not None else ("first" if d.number == 1 else "independent")
            lines.append(f"{d.number}. **{d.place()}** ({how}): {d.message()}")
            lines += [f"   {line}" for line in match_lines(d.match, "- ")[:1 if d.match is None else 4]]
    stacks = [("python", result.python.stack()), ("ruby", result.ruby.stack())]
    lines += ["", "## Both sides", ""] + [f"- **{side}**: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "side")
                                          for side, info in stacks]
    if figure:
        lines += ["", "## Losses", "", f"![{figure}]({figure})"]
    atomic.write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    return out / f"{stem}.md"


def default_report_dir(python_path, ruby_path):
    python_path, ruby_path = Path(python_path).absolute(), Path(ruby_path).absolute()
    return python_path.parent if python_path.parent == ruby_path.parent else python_path.parent


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m parity.diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("python_run", help="the run recorded by python -m parity.record (the reference)")
    parser.add_argument("ruby_run", help="the run recorded by pytorch_parity/record (the port)")
    parser.add_argument("--report", help="where the Markdown report goes (default: beside the runs)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    try:
        python, ruby = read_run(args.python_run), read_run(args.ruby_run)
        if python.side != "python":
            raise RunError(f"{python.path}: a {python.side} run where the python run goes: give the python run first")
        if ruby.side != "ruby":
            raise RunError(f"{ruby.path}: a {ruby.side} run where the ruby run goes: give the ruby run second")
        result = diagnose(python, ruby)
    except RunError as error:
        print(f"parity.diagnose: {error}", file=sys.stderr)
        return 2
    lines = summary_lines(result)
    report = write_report(result, args.report or default_report_dir(args.python_run, args.ruby_run))
    print("\n".join(lines))
    print(f"report: {report}")
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
