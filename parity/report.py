"""parity/report/: a Markdown summary of every comparison, both sides'
versions, and PNG figures that overlay the Python and Ruby curves."""

import json
from collections import OrderedDict
from pathlib import Path

from reference_py import atomic



def _grouped(comparisons):
    groups = OrderedDict()
    for c in comparisons:
        key = (c.quantity, c.where.get("strategy", "") or "")
        groups.setdefault(key, []).append(c)
    return groups


def _fmt(value):
    return "0" if value == 0 else f"{value:.3g}"


def summary_table(comparisons):
    lines = ["| quantity | strategy | compared | greatest abs. difference | greatest rel. difference | tolerance | verdict |",
             "|---|---|---|---|---|---|---|"]
    for (quantity, strategy), group in _grouped(comparisons).items():
        failed = [c for c in group if not c.passed]
        worst = max(group, key=lambda c: c.max_abs)
        verdict = "agree" if not failed else f"**differ** ({len(failed)} of {len(group)})"
        if any(c.problem for c in failed):
            verdict += ": " + next(c.problem for c in failed if c.problem)
        lines.append(f"| {quantity} | {strategy or '–'} | {len(group)} | {_fmt(worst.max_abs)} | "
                     f"{_fmt(max(c.max_rel for c in group))} | {worst.tolerance.describe()} | {verdict} |")
    return lines


def floor_table(comparisons):
    """Across stacks: per quantity, the reference's own divergence (its floor run) against the port's."""
    across = [c for c in comparisons if not c.tolerance.exact and "floor" in " ".join(c.notes)]
    if not across:
        return []
    lines = ["| quantity | strategy | compared | greatest floor | greatest port difference | greatest port / floor | verdict |",
             "|---|---|---|---|---|---|---|"]
    for (quantity, strategy), group in _grouped(across).items():
        floors = [c.tolerance.floor or 0.0 for c in group]
        ratios = [c.max_abs / f for c, f in zip(group, floors) if f > 0]
        verdict = "agree" if all(c.passed for c in group) else f"**differ** ({sum(not c.passed for c in group)})"
        lines.append(f"| {quantity} | {strategy or '–'} | {len(group)} | {_fmt(max(floors))} | "
                     f"{_fmt(max(c.max_abs for c in group))} | {_fmt(max(ratios)) if ratios else '–'} | {verdict} |")
    return lines


def zoo_table(comparisons):
    """The zoo matrix: one row per architecture, one column per quantity; a cell is "identical" or the
    first differing key (module, in forward order, or parameter) and the greatest absolute difference."""
    zoo = [c for c in comparisons if "arch" in c.where]
    if not zoo:
        return []
    cells, quantities = OrderedDict(), []
    for c in zoo:
        quantity = c.quantity.removeprefix("zoo: ")
        if quantity not in quantities:
            quantities.append(quantity)
        cells.setdefault(c.where["arch"], OrderedDict()).setdefault(quantity, []).append(c)
    lines = ["| architecture | " + " | ".join(quantities) + " |", "|---|" + "---|" * len(quantities)]
    for arch, by_quantity in cells.items():
        row = []
        for quantity in quantities:
            group = by_quantity.get(quantity, [])
            failed = [c for c in group if not c.passed]
            if not group:
                row.append("–")
            elif not failed:
                row.append("identical" if group[0].tolerance.exact else "agree")
            else:
                first = failed[0]
                size = first.problem or f"greatest abs. difference {_fmt(max(c.max_abs for c in failed))}"
                row.append(f"**differs** ({len(failed)} of {len(group)}): first `{first.where.get('key')}`, {size}")
        lines.append(f"| {arch} | " + " | ".join(row) + " |")
    return lines


def first_failures(comparisons, limit=20):
    return [f"- {c.message()}" for c in comparisons if not c.passed][:limit]


def _load_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _plot_pairs(path, title, panels):
    """panels: [(panel title, {"python": (x, y), "ruby": (x, y)})]; writes one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (panel, series) in zip(axes[0], panels):
        for side, style in (("python", dict(color="tab:blue", linewidth=2.5, alpha=0.6)),
                            ("ruby", dict(color="tab:red", linestyle="--", marker=".", linewidth=1.2))):
            if side in series:
                axis.plot(*series[side], label=side, **style)
        axis.set_title(panel)
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)


def replay_figures(out, runs):
    written = []
    python_dir, ruby_dir = runs / "python", runs / "ruby"
    if not (python_dir / "run.json").exists() or not (ruby_dir / "run.json").exists():
        return written
    from reference_py.tensor_io import read_bundle

    for strategy in _load_json(python_dir / "run.json").get("strategies", []):
        try:
            losses = {side: next(iter(read_bundle(d / strategy / "step_losses").values())).reshape(-1).tolist()
                      for side, d in (("python", python_dir), ("ruby", ruby_dir))}
            summaries = {side: _load_json(d / strategy / "summary.json") for side, d in
                         (("python", python_dir), ("ruby", ruby_dir))}
        except Exception:  # a side that did not write this strategy: the tables say so
            continue
        panels = [("loss per step", {s: (list(range(len(v))), v) for s, v in losses.items()})]
        for metric in ("val_loss", "val_acc"):
            panels.append((f"{metric} per epoch", {
                s: ([e["epoch"] for e in summary["epochs"]], [e[metric] for e in summary["epochs"]])
                for s, summary in summaries.items() if summary}))
        name = f"replay_{strategy}.png"
        _plot_pairs(out / name, f"replay, {strategy}: python vs ruby", panels)
        written.append(name)
    return written


def free_running_figures(out, runs):
    written = []
    for strategy_dir in sorted((runs / "free" / "python").glob("*/curves.json")):
        strategy = strategy_dir.parent.name
        curves = {side: _load_json(runs / "free" / side / strategy / "curves.json") for side in ("python", "ruby")}
        if not all(curves.values()):
            continue
        panels = []
        for metric in ("train_loss", "val_loss", "train_acc", "val_acc"):
            panels.append((metric, {s: ([e["epoch"] for e in c["epochs"]], [e[metric] for e in c["epochs"]])
                                    for s, c in curves.items()}))
        name = f"free_running_{strategy}.png"
        _plot_pairs(out / name, f"free-running training, {strategy}: each side's own pipeline", panels)
        written.append(name)
    return written


def write(out, comparisons, sides, runs, notes=()):
    out, runs = Path(out), Path(runs)
    out.mkdir(parents=True, exist_ok=True)
    figures = replay_figures(out, runs) + free_running_figures(out, runs)
    failed = sum(not c.passed for c in comparisons)
    lines = ["# Parity report: Ruby port vs Python reference", "",
             f"{len(comparisons)} comparisons, {failed} outside tolerance.", "", "## Both sides", ""]
    for side, info in sides.items():
        lines.append(f"- **{side}**: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "side"))
    lines += ["", "## Comparisons", ""] + summary_table(comparisons)
    floors = floor_table(comparisons)
    if floors:
        lines += ["", "## Across stacks: the reference's noise floor and the port's divergence", "",
                  "Each quantity may differ from the reference by FLOOR_MULTIPLE times the floor (parity/tolerances.py); "
                  "the floor is what the reference's run on the port's stack differs from the reference by."] + [""] + floors
    zoo = zoo_table(comparisons)
    if zoo:
        lines += ["", "## The zoo: torchvision-ruby's architectures against torchvision's", "",
                  "Stand-in weights (torchvision's initialisation from one seed), a seeded batch of 2 at the smallest "
                  "input each architecture takes (parity/test_zoo.py). \"initial weights\": does the port, from the "
                  "same seed, initialise as torchvision does?", ""] + zoo
    if failed:
        lines += ["", "## Mismatches (first 20)", ""] + first_failures(comparisons)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    atomic.write_text(out / "index.md", "\n".join(lines) + "\n")
