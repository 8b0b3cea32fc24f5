"""The benchmark results as one Markdown table, headed by the machine and versions they came from."""

from bench import stats

STEP_TITLES = {"finetune": "train step, finetune (ms)", "feature_extractor": "train step, feature_extractor (ms)",
               "eval": "eval forward (ms)"}
GC_SUFFIX = "+gc"  # bench/train_step.rb: the same step followed by a minor GC
STEP_VS_PYTHON, STEP_VS_FLOOR, PARITY_MAX_S, TRAIN_MAX_S = 1.05, 1.10, 120, 600
TITLE = "# hymenoptera-parity benchmarks"
HEADER = ("| benchmark | Python | Ruby | Ruby / Python | kernel floor | Python / floor | Ruby / floor | targets |\n"
          "|---|---:|---:|---:|---:|---:|---:|---|")


def ok(runs):
    return [run for run in runs if "error" not in run]


def samples(runs, mode, phase=None):
    """Every timed iteration of `mode` (or of one of its phases) across runs, in ms."""
    pooled = []
    for run in ok(runs):
        if mode in run["modes"]:
            pooled += run["modes"][mode]["total_ms"] if phase is None else run["modes"][mode]["phases_ms"][phase]
    return pooled


def num(value):
    return "—" if value is None else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def spread(values, low="p25", high="p75"):
    if not values:
        return "—"
    s = stats.summary(values)
    return f"{num(s['median'])} [{num(s[low])}–{num(s[high])}]"


def median(values):
    return stats.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def times(value):
    return "—" if value is None else f"{value:.2f}×"


def verdict(met):
    return "met" if met else "**not met**"


def round_ratios(ruby_runs, python_runs, values, python_values=None):
    """Ruby / Python per round (the processes run side by side): its range, as text."""
    python_values = python_values or values
    pairs = [ratio(median(values(r)), median(python_values(p))) for r, p in zip(ruby_runs, python_runs)
             if "error" not in r and "error" not in p]
    pairs = [x for x in pairs if x is not None]
    return f" ({min(pairs):.2f}–{max(pairs):.2f})" if len(pairs) > 1 else ""


def step_rows(steps):
    rows = []
    py_runs, rb_runs, floor_runs = steps["python"], steps["ruby"], steps["floor"]
    modes = next((list(run["modes"]) for run in ok(py_runs) + ok(rb_runs)), [])
    for mode in [mode for mode in modes if not mode.endswith(GC_SUFFIX)]:
        phases = next(list(run["modes"][mode]["phases_ms"]) for run in ok(py_runs) + ok(rb_runs))
        for phase in [None] + (phases if len(phases) > 1 else []):
            py, rb, floor = (median(samples(runs, mode, phase)) for runs in (py_runs, rb_runs, floor_runs))
            vs_python, py_floor, rb_floor = ratio(rb, py), ratio(py, floor), ratio(rb, floor)
            title, targets = STEP_TITLES[mode], ""
            if phase is not None:
                title = f"· {mode}: {phase}"
            elif None not in (vs_python, py_floor, rb_floor):
                targets = (f"Ruby ≤ {STEP_VS_PYTHON}× Python: {verdict(vs_python <= STEP_VS_PYTHON)}; "
                           f"both ≤ {STEP_VS_FLOOR}× floor: {verdict(max(py_floor, rb_floor) <= STEP_VS_FLOOR)}")
            rows.append([title,
                         spread(samples(py_runs, mode, phase)) if phase is None else num(py),
                         spread(samples(rb_runs, mode, phase)) if phase is None else num(rb),
                         times(vs_python) + round_ratios(rb_runs, py_runs, lambda run: samples([run], mode, phase)),
                         num(floor), times(py_floor), times(rb_floor), targets])
        rows += gc_rows(mode, py_runs, rb_runs, floor_runs)
    return rows


def gc_rows(mode, py_runs, rb_runs, floor_runs):
    """The Ruby step followed by a minor GC: what the port's loops did before pytorch_parity counted tensor
    memory for Ruby's GC (ruby_port/lib/pytorch_parity/torch/tensor_memory.rb); what an explicit GC still buys."""
    variant = samples(rb_runs, mode + GC_SUFFIX)
    if not variant:
        return []
    py, floor = median(samples(py_runs, mode)), median(samples(floor_runs, mode))
    gc = median(samples(rb_runs, mode + GC_SUFFIX, "gc"))
    vs_python, rb_floor = ratio(median(variant), py), ratio(median(variant), floor)
    targets = f"(the GC itself: {num(gc)} ms)"
    if None not in (vs_python, rb_floor):
        targets = (f"Ruby ≤ {STEP_VS_PYTHON}× Python: {verdict(vs_python <= STEP_VS_PYTHON)}; "
                   f"Ruby ≤ {STEP_VS_FLOOR}× floor: {verdict(rb_floor <= STEP_VS_FLOOR)} " + targets)
    return [[f"· {mode}: with `GC.start(full_mark: false)` after each step", num(py), spread(variant),
             times(vs_python) + round_ratios(rb_runs, py_runs, lambda run: samples([run], mode + GC_SUFFIX),
                                             lambda run: samples([run], mode)),
             num(floor), "", times(rb_floor), targets]]


def rates(runs, split):
    return [rate for run in ok(runs) for rate in run["splits"][split]["images_per_s"]]


def data_rows(data):
    rows = []
    for split, what in (("train", "RandomResizedCrop, flip"), ("val", "Resize, CenterCrop")):
        py, rb = rates(data["python"], split), rates(data["ruby"], split)
        vs_python = ratio(median(rb), median(py))
        targets = "" if vs_python is None else f"Ruby ≥ Python: {verdict(vs_python >= 1.0)}"
        rows.append([f"data loading, {split} ({what}; images/s)", spread(py, "min", "max"), spread(rb, "min", "max"),
                     times(vs_python) + round_ratios(data["ruby"], data["python"], lambda run: rates([run], split)),
                     "", "", "", targets])
    return rows


def seconds(result):
    if result is None:
        return "—"
    if result.get("ok"):
        return f"{result['seconds']:.0f} s"
    why = result.get("note") or result.get("last_line") or f"exit {result.get('exit_code')}"
    return f"{result['seconds']:.0f} s, failed ({why})" if "seconds" in result else f"not run ({why})"


def wall_rows(walls):
    if not walls:
        return []
    parity, train_py, train_rb = walls.get("pytest_parity"), walls.get("train_python"), walls.get("train_ruby")
    rows = []
    if parity:
        fixtures = "" if parity.get("fixtures_existed") else " (fixtures made during the run)"
        met = parity.get("ok") and parity["seconds"] <= PARITY_MAX_S
        rows.append([f"`{parity['command']}` (wall){fixtures}", seconds(parity), "", "", "", "", "",
                     f"≤ {PARITY_MAX_S} s: {verdict(met)}"])
    if train_py or train_rb:
        both = [r for r in (train_py, train_rb) if r]
        met = all(r.get("ok") and r["seconds"] <= TRAIN_MAX_S for r in both)
        vs_python = ratio(train_rb and train_rb.get("seconds"), train_py and train_py.get("seconds"))
        commands = ", ".join(f"`{r['command']}`" for r in both)
        defaults = not any("epochs" in r["command"].lower() for r in both)
        rows.append([f"training {'on the embedded defaults ' if defaults else ''}(wall; {commands})",
                     seconds(train_py), seconds(train_rb), times(vs_python), "", "", "",
                     f"≤ {TRAIN_MAX_S // 60} min each: {verdict(met)}" if defaults else "fewer epochs: not judged"])
    return rows


def runtime(runs):
    return next((run["runtime"] for run in ok(runs)), {})


def source(runs):
    return next((run["source"] for run in ok(runs)), "—")


def header(results):
    m, s = results["machine"], results["settings"]
    py, rb = runtime(results["steps"]["python"]), runtime(results["steps"]["ruby"])
    lines = [
        f"Measured {results['finished']} on {m['cpu']}, {m['cores']} cores (Linux {m['kernel']}); "
        f"HYMENOPTERA_THREADS={s['threads']}, LibTorch reports {py.get('threads', '?')} thread(s) in Python and "
        f"{rb.get('threads', '?')} in Ruby; load average {m['load_average_start']} at start, "
        f"{m['load_average_end']} at end.",
        "",
        f"- Python {py.get('python', '?')}: torch {py.get('torch', '?')}, torchvision {py.get('torchvision', '?')}, "
        f"LibTorch {py.get('libtorch', '?')} (`{py.get('libtorch_library', '?')}`)",
        f"- Ruby {rb.get('ruby', '?')}: torch.rb {rb.get('torch_rb', '?')}, torchvision-ruby {rb.get('torchvision', '?')}, "
        f"LibTorch {rb.get('libtorch', '?')} (`{rb.get('libtorch_library', '?')}`)",
        f"- Model and optimizer: `{source(results['steps']['python'])}` / `{source(results['steps']['ruby'])}`; "
        f"data: `{source(results['data']['python'])}` / `{source(results['data']['ruby'])}` on `{s['data_dir']}`",
        f"- {s['rounds']} rounds of interleaved processes (Python and Ruby alternately first, then the profiled floor), "
        f"each {s['warmup']} warm-up + {s['iters']} timed iterations per mode; data: {s['data_rounds']} rounds × "
        f"{s['passes']} timed passes per split after one warm-up pass",
    ]
    if s.get("quick"):
        lines.append("- **Quick smoke run** (`--quick`): too few iterations to compare; run without it for numbers.")
    return "\n".join(lines)


def per_mode(runs, key):
    """{mode: median of `key` over every timed iteration of every run}, for the modes that recorded it."""
    pooled = {}
    for run in ok(runs):
        for mode, result in run["modes"].items():
            if key in result:
                pooled.setdefault(mode, []).extend(result[key])
    return {mode: median(values) for mode, values in pooled.items()}


def notes(results):
    lines = [
        "Times: median [p25–p75] over every timed iteration of every round; images/s: median [min–max] over passes. "
        "Ruby / Python: ratio of medians, in parentheses its range over the rounds. "
        "Kernel floor: per iteration, the sum of the self CPU time of every `aten::` op under torch.profiler "
        "(bench/kernel_floor.py), i.e. LibTorch's own time without the interpreter, the autograd engine's "
        "bookkeeping or the optimizer's loop; `·` rows split a step into its phases (on phases of a few tiny ops, such "
        "as zero_grad, the profiler's own per-op cost dominates the floor, so their floor ratios mean little). "
        "Plain Ruby rows: torch.rb with pytorch_parity required, nothing added to the loop (its memory accounting "
        "runs Ruby's GC as tensors pile up, since torch.rb frees LibTorch memory only when Ruby's GC runs). "
        "\"After each step\" rows: the same step followed by a minor GC, what the port's loops did before the "
        "accounting (bench/README.md, Findings).",
    ]
    gc = [(mode, *(sum(run["modes"][mode].get(key, 0) for run in ok(results["steps"]["ruby"]))
                   for key in ("gc_runs", "accounting_gc_runs", "accounting_gc_wall_ms", "gc_ms")))
          for mode in next((list(run["modes"]) for run in ok(results["steps"]["ruby"])), [])]
    if gc:
        lines.append("Ruby GC during the timed iterations (runs, of them started by pytorch_parity's memory accounting, "
                     "and those in wall time; `GC.stat(:time)`, process CPU time with LibTorch's spinning threads, in "
                     "brackets): " + ", ".join(f"{mode} {runs} runs, {started} started in {wall:.0f} ms [{cpu} ms]"
                                             for mode, runs, started, wall, cpu in gc) + ".")
    cpu = {side: per_mode(results["steps"][side], "cpu_ms") for side in ("python", "ruby")}
    faults = {side: per_mode(results["steps"][side], "page_faults") for side in ("python", "ruby")}
    if cpu["python"] and cpu["ruby"]:
        lines.append("Per iteration, median process CPU time (all threads; steadier than wall time on a busy machine) "
                     "and minor page faults: " + "; ".join(
                         f"{side} " + ", ".join(f"{mode} {num(cpu[side][mode])} ms / {faults[side][mode]:.0f}"
                                                for mode in cpu[side]) for side in ("python", "ruby")) + ".")
    rss = {side: next((run["modes"] for run in ok(results["steps"][side])), {}) for side in ("python", "ruby")}
    if rss["python"] and rss["ruby"]:
        lines.append("Resident memory after each mode (one process, modes in this order): "
                     + "; ".join(f"{side} " + ", ".join(f"{mode} {modes[mode].get('rss_mb', 0):.0f} MB" for mode in modes)
                                 for side, modes in rss.items()) + ".")
    for failure in results.get("failures", []):
        lines.append(f"Failed: {failure}")
    return "\n\n".join(lines)


def render(results):
    rows = step_rows(results["steps"]) + data_rows(results["data"]) + wall_rows(results.get("walls"))
    table = "\n".join([HEADER] + ["| " + " | ".join(row) + " |" for row in rows])
    return f"{TITLE}\n\n{header(results)}\n\n{table}\n\n{notes(results)}\n"
