"""The measurement behind parity/tolerances.py's FLOOR_MULTIPLE.

    python bench/floor_multiple.py [--threads 2,1,3] [--runs runs/floor_multiple]

Runs the Python replay at three thread counts: A (the reference), B (the floor run) and C (a stand-in
for "another faithful stack"). For every compared quantity (each tensor of each bundle, each summary
number), the ratio |C - A| / |B - A| (greatest absolute differences) says how far another faithful
stack strays from the reference in units of the measured floor. It decides only where |C - A| exceeds
the fixed bound of ACROSS_STACKS (below it the fixed bound passes anyway). Prints, per kind of quantity,
the distribution of the ratios and the largest decisive one as JSON; the multiple must stay above it.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for parity and reference_py

from parity.compare import measure  # noqa: E402
from reference_py import ROOT  # noqa: E402
from parity.runs import Run  # noqa: E402
from parity.sides import python, run_together  # noqa: E402
from parity.tolerances import ACROSS_STACKS, BIT_IDENTICAL  # noqa: E402

BUNDLES = {"eval_logits": "logits", "trace_eval": "trace", "trace_train": "trace", "step_losses": "loss",
           "grads_step1": "gradients", "momentum_step1": "momentum", "momentum_last": "momentum",
           "state_epoch_0": "state", "state_epoch_1": "state", "state_best": "state"}
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


def greatest_difference(x, y):
    return measure(x, y, quantity="", tolerance=BIT_IDENTICAL).max_abs


def ratios(a, b, c, strategy):
    """(kind, |C - A| / |B - A|) for every quantity where B differs from A."""
    import torch

    found = []
    for bundle, kind in BUNDLES.items():
        tensors_a = a.bundle(strategy, bundle)
        for key, value in tensors_a.items():
            floor = greatest_difference(b.bundle(strategy, bundle)[key], value)
            other = greatest_difference(c.bundle(strategy, bundle)[key], value)
            found.append((kind, floor, other))
    for epoch_a, epoch_b, epoch_c in zip(*(run.summary(strategy)["epochs"] for run in (a, b, c))):
        for metric in METRICS:
            values = [torch.tensor(e[metric], dtype=torch.float64) for e in (epoch_a, epoch_b, epoch_c)]
            found.append(("metrics", greatest_difference(values[1], values[0]), greatest_difference(values[2], values[0])))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="2,1,3", help="A,B,C: the reference's, the floor run's, another's")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "floor_multiple"))
    parser.add_argument("--reuse", action="store_true", help="reuse the runs of an earlier call where they exist")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.threads.split(",")]
    from reference_py.export_fixtures import ensure_fixtures

    fixtures = ROOT / "fixtures"
    ensure_fixtures(fixtures)
    runs = [Path(args.runs) / f"threads_{n}" for n in counts]
    for n, out in zip(counts, runs):  # one after another: each run alone on the cores
        if not (args.reuse and (out / "run.json").exists()):
            run_together(python("replay.py", "--fixtures", fixtures, "--out", out, thread_count=n))
    a, b, c = (Run(out) for out in runs)
    by_kind = {}
    for strategy in a.info["strategies"]:
        for kind, floor, other in ratios(a, b, c, strategy):
            entry = by_kind.setdefault(kind, {"compared": 0, "floor_zero": 0, "beyond_fixed_bound": 0,
                                              "beyond_fixed_bound_where_floor_zero": 0, "ratios": [], "decisive": []})
            entry["compared"] += 1
            decisive = other > ACROSS_STACKS[kind].atol
            entry["beyond_fixed_bound"] += decisive
            if floor == 0:
                entry["floor_zero"] += 1
                entry["beyond_fixed_bound_where_floor_zero"] += decisive
            else:
                entry["ratios"].append(other / floor)
                if decisive:
                    entry["decisive"].append(other / floor)
    summary = {}
    for kind, entry in by_kind.items():
        values, decisive = sorted(entry.pop("ratios")), sorted(entry.pop("decisive"))
        entry.update(median_ratio=values[len(values) // 2] if values else None, max_ratio=values[-1] if values else None,
                     max_decisive_ratio=decisive[-1] if decisive else None)
        summary[kind] = entry
    largest = max((e["max_decisive_ratio"] for e in summary.values() if e["max_decisive_ratio"] is not None), default=None)
    print(json.dumps({"threads": dict(zip("ABC", counts)), "by_kind": summary, "largest_decisive_ratio": largest},
                     indent=1))


if __name__ == "__main__":
    main()
