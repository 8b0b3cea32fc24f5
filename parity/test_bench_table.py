"""The README's benchmark figures are bench/results/'s: its table is the one bench/readme_table.py makes from
latest.md (the last full run of bench/run.py) and later.md (rows measured since)."""

import pytest

from bench import readme_table
from reference_py.errors import UserError

LATEST = """Measured 2026-01-02 03:04 UTC on a CPU, 2 cores (Linux 6); HYMENOPTERA_THREADS=2.

- Python 3: torch 1
- Ruby 3: torch.rb 0

| benchmark | Python | Ruby | targets |
|---|---:|---:|---|
| train step, finetune (ms) | 3 | 4 | old |
| · finetune: forward | 1 | 2 |  |
| · finetune: the port's step, with a GC after it | 3 | 3 | met |
| data loading, train (images/s) | 5 | 1 | not met |
| training on the embedded defaults (wall) | 9 s | 9 s | met |
"""
LATER = """After the run of 2026-01-02 03:04 UTC.

| benchmark | Python | Ruby | targets |
|---|---:|---:|---|
| training, 2 epochs (wall) | 2 s | 2 s | met (2026-02-01) |
| data loading, train (images/s) | 5 | 6 | met (2026-02-01) |

## Superseded

| benchmark | why |
|---|---|
| training on the embedded defaults (wall) | measured before the defaults changed |
"""


def test_the_readme_table_is_made_from_bench_results():
    made = readme_table.readme_table(readme_table.LATEST.read_text(), readme_table.LATER.read_text())
    assert readme_table.readme_section(readme_table.README.read_text()) == made, (
        "README.md's benchmark table is not the one bench/results/ makes: run `python bench/readme_table.py`")


def test_a_later_row_replaces_the_run_s_row_of_its_benchmark():
    rows = readme_table.table_rows(readme_table.readme_table(LATEST, LATER))
    later = readme_table.table_rows(LATER.split(readme_table.SUPERSEDED)[0])
    latest = readme_table.table_rows(LATEST)
    # the single phase and the superseded row left out, the later rows in the run's place or after its rows
    assert list(rows.values()) == [latest["train step, finetune (ms)"], latest["· finetune: the port's step, with a GC after it"],
                        later["data loading, train (images/s)"], later["training, 2 epochs (wall)"]]


def test_later_rows_of_another_run_are_refused():
    with pytest.raises(UserError, match="follows the run of 2026-01-02 03:04 UTC.*is the run of 2026-03-04 05:06 UTC"):
        readme_table.readme_table(LATEST.replace("2026-01-02 03:04", "2026-03-04 05:06"), LATER)
