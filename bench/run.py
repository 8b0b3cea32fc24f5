"""Run every benchmark, print one Markdown table, and write it to bench/results/latest.md.

    python bench/run.py                     # about 4-5 minutes on 2 quiet cores
    python bench/run.py --with-wall-times   # also time `pytest parity` and training in both languages (long)
    python bench/run.py --quick             # smoke run: a few iterations, numbers not comparable
    python bench/run.py --quick --with-wall-times --train-epochs 1   # smoke run of everything

Python and Ruby processes alternate over several rounds (bench/train_step.py and .rb, then the profiled
floor bench/kernel_floor.py; bench/data_loading.py and .rb), all with one HYMENOPTERA_THREADS (default:
every core). The raw numbers go to bench/results/latest.json beside the table.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for bench and reference_py

from bench import machine, table  # noqa: E402
from reference_py import ROOT, atomic, output_claim, python_interpreter, threads  # noqa: E402
from reference_py.errors import run_cli  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PYTHON = [python_interpreter()]
RUBY = ["bundle", "exec", "ruby"]


def child(label, command, failures):
    """Run one benchmark process; its JSON (last line of stdout), or {"error": ...} if it failed."""
    env = {**threads.subprocess_env(), "BUNDLE_GEMFILE": str(ROOT / "Gemfile")}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"  {label}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}, no JSON on stdout"])[-1]
    failures.append(f"{label}: {reason}")
    return {"error": reason}


def step_rounds(args, failures):
    runs = {"python": [], "ruby": [], "floor": []}
    counts = ["--warmup", str(args.warmup), "--iters", str(args.iters)]
    sides = {"python": PYTHON + ["bench/train_step.py"], "ruby": RUBY + ["bench/train_step.rb"],
             "floor": PYTHON + ["bench/kernel_floor.py"]}
    for r in range(args.rounds):
        order = ["python", "ruby"] if r % 2 == 0 else ["ruby", "python"]
        for side in order + ["floor"]:
            runs[side].append(child(f"round {r + 1}/{args.rounds} {side} step", sides[side] + counts, failures))
    return runs


def data_rounds(args, data_dir, failures):
    runs = {"python": [], "ruby": []}
    options = ["--data-dir", str(data_dir), "--passes", str(args.passes)]
    sides = {"python": PYTHON + ["bench/data_loading.py"], "ruby": RUBY + ["bench/data_loading.rb"]}
    for r in range(args.data_rounds):
        for side in (["python", "ruby"] if r % 2 == 0 else ["ruby", "python"]):
            runs[side].append(child(f"round {r + 1}/{args.data_rounds} {side} data", sides[side] + options, failures))
    return runs


def wall_times(epochs, failures):
    extra = [] if epochs is None else ["--epochs", str(epochs)]
    walls = child("wall times (pytest parity, training in Python and in Ruby)", PYTHON + ["bench/wall_times.py"] + extra,
                  failures)
    return None if "error" in walls else walls


def default_data_dir():
    from reference_py.standin_data import ensure_standin
    return ensure_standin()


def written_by_bench(out):
    """Whether the table at `out` and the numbers beside it (each, if there) are what this script wrote."""
    table_path, numbers_path = Path(out), Path(out).with_suffix(".json")
    try:
        if table_path.exists() and not table_path.read_text().startswith(table.TITLE + "\n"):
            return False
        return not numbers_path.exists() or {"settings", "steps", "machine"} <= set(json.loads(numbers_path.read_text()))
    except (OSError, ValueError, TypeError):
        return False


def results_output(out):
    """--out and its .json, claimed before the benchmarks run: new, or what an earlier run wrote."""
    return output_claim.OutputFile(out, "bench/run.py", "--out", written_by_bench,
                                   companions=[Path(out).with_suffix(".json")])


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved Python/Ruby step processes (default 5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per mode and process")
    parser.add_argument("--iters", type=int, default=12, help="timed iterations per mode and process")
    parser.add_argument("--data-rounds", type=int, default=3, help="interleaved data-loading processes per side")
    parser.add_argument("--passes", type=int, default=2, help="timed passes per split and data-loading process")
    parser.add_argument("--data-dir", help="images for data loading (default: the stand-in, generated if missing)")
    parser.add_argument("--with-wall-times", action="store_true",
                        help="also time `pytest parity -q` and training on the embedded defaults in both languages")
    parser.add_argument("--train-epochs", type=int,
                        help="with --with-wall-times: train N epochs instead of the defaults (a smoke test, not judged)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 warm-up + 3 iterations, 1 pass")
    parser.add_argument("--out", default=str(RESULTS / "latest.md"), help="where to write the table")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    out = output_claim.check_path_option(args.out, "--out")
    with results_output(out):
        run(args, out)


def run(args, out):
    if args.quick:
        args.rounds, args.warmup, args.iters, args.data_rounds, args.passes = 2, 1, 3, 1, 1
    load_start = machine.load_average()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    failures = []
    results = {
        "settings": {"threads": threads.thread_count(), "rounds": args.rounds, "warmup": args.warmup,
                     "iters": args.iters, "data_rounds": args.data_rounds, "passes": args.passes,
                     "data_dir": os.path.relpath(data_dir, ROOT), "quick": args.quick},
        "steps": step_rounds(args, failures),
        "data": data_rounds(args, data_dir, failures),
        "walls": wall_times(args.train_epochs, failures) if args.with_wall_times else None,
    }
    results["machine"] = {**machine.describe(), "load_average_start": load_start,
                          "load_average_end": machine.load_average()}
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["failures"] = failures
    markdown = table.render(results)
    print(markdown)
    atomic.write_text(out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
    atomic.write_text(out, markdown)
    print(f"written to {os.path.relpath(out, Path.cwd())} (raw numbers: {out.with_suffix('.json').name})",
          file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
