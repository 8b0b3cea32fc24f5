"""The README's benchmark table, made from bench/results/: latest.md, the last full run of bench/run.py,
and later.md, the rows measured since, each of which replaces latest.md's row of the same benchmark.

    python bench/readme_table.py    # rewrites the README's table between its markers

parity/test_bench_table.py fails when the README's table is not the one these two files make.
"""

import re
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for bench and reference_py

from bench.table import HEADER  # noqa: E402
from reference_py import ROOT, atomic  # noqa: E402
from reference_py.arguments import ArgumentParser  # noqa: E402
from reference_py.errors import UserError, run_cli  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LATEST, LATER = RESULTS / "latest.md", RESULTS / "later.md"
README = ROOT / "README.md"
START = "<!-- benchmarks: made from bench/results/ by `python bench/readme_table.py` -->"
END = "<!-- end of benchmarks -->"
SUPERSEDED = "\n## Superseded\n"
PHASE_ROW = re.compile(r"· [a-z_]+: [a-z_]+")  # table.py's row of one phase of a step, which latest.md keeps


def table_rows(text):
    """{benchmark: its row} of the Markdown table rows in `text`, in order (header and rule left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| benchmark |")]
    return {line[2:].split(" | ", 1)[0]: line for line in lines}


def run_of(latest):
    """When latest.md's run was measured ("2026-11-22 09:36 UTC")."""
    found = re.search(r"^Measured (.+? UTC) on ", latest, re.M)
    if not found:
        raise UserError(f"{LATEST} has no \"Measured ... UTC on\" line: write it with `python bench/run.py`")
    return found.group(1)


def readme_table(latest, later):
    """The README's section: latest.md's machine and versions, then its rows but those of single phases and
    those later.md lists as superseded, each replaced by later.md's row of the same benchmark, then later.md's
    other rows."""
    after = re.search(r"^After the run of (.+)\.$", later, re.M)
    if not after or after.group(1) != run_of(latest):
        raise UserError(f"{LATER} follows the run of {after.group(1) if after else '(no date)'}, {LATEST} is the run "
                        f"of {run_of(latest)}: delete from later.md the rows that run measured again and write its "
                        f"date there (\"After the run of {run_of(latest)}.\")")
    measured, _, superseded_text = later.partition(SUPERSEDED)
    newer, superseded, rows = table_rows(measured), set(table_rows(superseded_text)), table_rows(latest)
    if superseded - set(rows):
        raise UserError(f"{LATER} lists as superseded rows that {LATEST} does not have: {', '.join(superseded - set(rows))}")
    kept = [newer.pop(name, row) for name, row in rows.items() if not PHASE_ROW.fullmatch(name) and name not in superseded]
    machine = [line for line in latest.splitlines() if line.startswith(("Measured ", "- Python ", "- Ruby "))]
    return "\n".join([START, f"From `{LATEST.relative_to(ROOT)}`: {machine[0]}", "", *machine[1:], "",
                      f"Rows dated in their last column are from `{LATER.relative_to(ROOT)}`.", "",
                      HEADER, *kept, *newer.values(), END])


def readme_section(text):
    """The README's table between its markers, or None without them."""
    start = text.find(START)
    end = text.find(END, start)
    return None if start < 0 or end < 0 else text[start:end + len(END)]


def main(argv=None):
    ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    text = README.read_text()
    section = readme_section(text)
    if section is None:
        raise UserError(f"{README} has no {START} ... {END} section: put the two markers where the table goes")
    atomic.write_text(README, text.replace(section, readme_table(LATEST.read_text(), LATER.read_text())))
    print(f"readme_table: wrote the benchmark table of {README.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
