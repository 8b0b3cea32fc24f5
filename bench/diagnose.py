"""Wall time of `python -m parity.diagnose` on an identical pair: two epochs of the tutorial, both sides.

    python bench/diagnose.py [--repeats N] [--workers N]

Records examples/tutorial.py and examples/tutorial_port.rb (with -rpytorch_parity) on the stand-in set,
two epochs, with the README's commands, into a temporary folder, then times the diagnosis of the pair N times. The recording is
not timed: it is the programs' own training. Prints one JSON object: the seconds of each diagnosis, their
summary, its exit status and last line (it must say `identical`).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for reference_py and parity

from bench.stats import summary  # noqa: E402
from reference_py import ROOT, threads  # noqa: E402
from reference_py.pretrained import ensure_net  # noqa: E402
from reference_py.standin_data import DEFAULT_DIR, ensure_standin  # noqa: E402

EPOCHS = 2
TIMEOUT_S = 900


def tutorial_args(out, workers):
    return ["--data-dir", str(DEFAULT_DIR), "--weights", str(ROOT / "net.pth"), "--epochs", str(EPOCHS),
            "--workers", str(workers), "--out-dir", str(out)]


def record(runs, workers):
    """The pair, recorded as the README's "Check your own port" records it."""
    env = {**threads.subprocess_env(), "RUBYLIB": str(ROOT / "ruby_port" / "lib"), "BUNDLE_GEMFILE": str(ROOT / "Gemfile")}
    commands = {
        "python": ([sys.executable, "-m", "parity.record", "--out", str(runs / "python"), "examples/tutorial.py",
                    *tutorial_args(runs / "out-python", workers)], env),
        "ruby": (["bundle", "exec", "ruby", "-rpytorch_parity", "-rpytorch_parity/record", "examples/tutorial_port.rb",
                  *tutorial_args(runs / "out-ruby", workers)], {**env, "PYTORCH_PARITY_RECORD": str(runs / "ruby")}),
    }
    for name, (command, command_env) in commands.items():
        done = subprocess.run(command, cwd=ROOT, env=command_env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            sys.exit(f"bench/diagnose.py: error: recording the {name} side failed (exit {done.returncode}): "
                     f"{(done.stderr.strip().splitlines() or [''])[-1]}")


def diagnose(runs):
    command = [sys.executable, "-m", "parity.diagnose", str(runs / "python"), str(runs / "ruby"),
               "--report", str(runs / "report")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=threads.subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - start
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return seconds, done.returncode, last


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="diagnoses timed (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="the tutorial's num_workers when recording (default 0)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    ensure_standin(DEFAULT_DIR)
    ensure_net(ROOT / "net.pth")
    with tempfile.TemporaryDirectory(prefix="bench-diagnose-") as scratch:
        runs = Path(scratch)
        record(runs, args.workers)
        timed = [diagnose(runs) for _ in range(args.repeats)]
    seconds = [s for s, _, _ in timed]
    json.dump({"epochs": EPOCHS, "workers": args.workers, "seconds": seconds, "summary": summary(seconds),
               "exit_codes": sorted({code for _, code, _ in timed}), "last_line": timed[-1][2]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
