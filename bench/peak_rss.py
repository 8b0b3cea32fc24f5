"""Peak memory of a whole command, and its trainer's memory epoch by epoch.

    python bench/peak_rss.py [--interval 0.05] -- COMMAND [ARG ...]

For example `python bench/peak_rss.py -- rake train` against `python bench/peak_rss.py -- python
reference_py/train.py`. Runs COMMAND, reads the resident memory (VmRSS) of every process in its tree every
--interval seconds, and passes what it prints on to stderr. Prints one JSON object: the command, its exit
status and wall time, the highest RSS any single process of the tree reached (MiB; a DataLoader's workers are
processes of their own, as in `/usr/bin/time -v`'s maximum), and the largest process's RSS when each line the
tutorial's trainers print as an epoch starts ("Epoch N/M") appears, and at "Training complete": whether memory
grows over the epochs. A benchmark, not a test: it asserts nothing.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

MIB = 1024


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two readings (default 0.05)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    return parser


def process_tree(root):
    """root's pid and those of all its descendants, from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def rss_mib(pid):
    """pid's resident memory in MiB, 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / MIB if "VmRSS:" in status else 0.0


class Sampler:
    """Reads the tree's RSS every interval seconds on a thread of its own: each process's highest, and the
    largest process's current RSS."""

    def __init__(self, root, interval):
        self.root, self.interval = root, interval
        self.highest = {}
        self.largest_now = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            readings = {pid: rss_mib(pid) for pid in process_tree(self.root)}
            for pid, rss in readings.items():
                self.highest[pid] = max(self.highest.get(pid, 0.0), rss)
            self.largest_now = max(readings.values(), default=0.0)
            self._stop.wait(self.interval)


def epoch_mark(line):
    """"N/M" for a line that starts an epoch, "end" for the trainers' last summary line, else None."""
    if line.startswith("Epoch ") and "/" in line.split()[1]:
        return line.split()[1]
    return "end" if line.startswith("Training complete") else None


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("peak_rss: no command given; run `python bench/peak_rss.py -- COMMAND [ARG ...]`")
    if args.interval <= 0:
        sys.exit(f"peak_rss: --interval {args.interval} is not a positive number of seconds; give one, such as 0.05")
    started = time.monotonic()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as e:
        sys.exit(f"peak_rss: cannot start {command[0]}: {e.strerror}; check the command and your PATH")
    epochs = []
    with Sampler(process.pid, args.interval) as sampler:
        for line in process.stdout:
            sys.stderr.write(line)
            mark = epoch_mark(line)
            if mark is not None:
                epochs.append({"epoch": mark, "largest_rss_mib": round(sampler.largest_now, 1)})
        status = process.wait()
    json.dump({"command": command, "exit_status": status, "wall_s": round(time.monotonic() - started, 1),
               "peak_rss_mib": round(max(sampler.highest.values(), default=0.0), 1), "epochs": epochs}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
