"""The replay: both sides run the fixtures' protocol; every recorded quantity must agree.

Each test compares one quantity of the table (parity/quantities.py) for one strategy. When both sides
load the same LibTorch with the same thread count the expectation is bit-identical; across stacks,
within a multiple of the reference's own noise floor (parity/tolerances.py, parity/conftest.py).
"""

import json

import pytest

from parity import data_paths, quantities
from parity.compare import check
from parity.settings import ALL_STRATEGIES, STRATEGIES


@pytest.mark.parametrize("quantity", quantities.of("replay"), ids=quantities.ident)
def test_quantity(strategy, quantity, replay_runs, recorder):
    check(quantities.compare(quantity, replay_runs.pair(strategy)), recorder)


def test_the_data_takes_every_path_the_real_data_takes(fixtures_dir, replay_runs):
    """A partial last batch in both splits, unequal classes, a tie in val accuracy, a best epoch before the
    last (parity/data_paths.py), read from the fixtures' manifest (subsets, batch size) and the reference's
    summaries."""
    manifest = json.loads((fixtures_dir / "manifest.json").read_text())
    class_counts = data_paths.class_counts_of_paths(manifest["replay_subset"]["train"] + manifest["replay_subset"]["val"])
    histories = {strategy: replay_runs.python.summary(strategy) for strategy in STRATEGIES}
    taken = data_paths.paths_taken(class_counts, manifest["protocol"]["batch_size"], histories)
    data_paths.check_every_path_taken(taken, "the replay's fixtures", "change EVAL_PER_CLASS or REPLAY_PER_CLASS in "
                                      "reference_py/export_fixtures.py, or the replay values of reference_py/recipe.py "
                                      "(the fixtures' PROTOCOL), until they do",
                                      STRATEGIES == ALL_STRATEGIES)
