"""Time the training step (finetune, feature_extractor) and the eval forward in Python.

    python bench/train_step.py [--warmup 3] [--iters 10] [--modes finetune,feature_extractor,eval]

The twin of bench/train_step.rb. Prints one JSON object: this side's runtime, and per mode the time
of every timed iteration and of each of its phases, in ms, with the process's CPU time and minor page
faults per iteration and its resident memory after the mode. A benchmark, not a test: it asserts nothing.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for bench and reference_py

from bench import workload  # noqa: E402
from reference_py import runtime_info, threads  # noqa: E402


def rss_mb():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def minor_faults():
    """Minor page faults of this process so far (/proc/self/stat, field 10)."""
    return int(Path("/proc/self/stat").read_text().rsplit(") ", 1)[1].split()[7])


def time_mode(mode, warmup, iters):
    step = workload.step_fn(mode)
    for _ in range(warmup):
        step(lambda phase: None)
    totals, cpu, faults, phases = [], [], [], {phase: [] for phase in workload.phases(mode)}
    for _ in range(iters):
        cpu_start, faults_start = time.process_time(), minor_faults()
        start = last = time.perf_counter()

        def mark(phase):
            nonlocal last
            now = time.perf_counter()
            phases[phase].append((now - last) * 1e3)
            last = now

        step(mark)
        totals.append((last - start) * 1e3)
        cpu.append((time.process_time() - cpu_start) * 1e3)
        faults.append(minor_faults() - faults_start)
    return {"total_ms": totals, "phases_ms": phases, "cpu_ms": cpu, "page_faults": faults, "rss_mb": rss_mb()}


def get_args_parser(description=__doc__.splitlines()[0]):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--warmup", type=int, default=3, help="warm-up iterations per mode (not measured)")
    parser.add_argument("--iters", type=int, default=10, help="measured iterations per mode")
    parser.add_argument("--modes", default=",".join(workload.MODES), help="comma-separated subset of the modes")
    return parser


def main(argv=None, measure=time_mode, side="python", description=__doc__.splitlines()[0]):
    """Apply HYMENOPTERA_THREADS, run measure(mode, warmup, iters) for every mode, print the JSON."""
    args = get_args_parser(description).parse_args(argv)
    count = threads.configure()
    modes = {mode: measure(mode, args.warmup, args.iters) for mode in args.modes.split(",")}
    json.dump({"side": side, "source": workload.SOURCE, "runtime": runtime_info.describe(count), "modes": modes},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
