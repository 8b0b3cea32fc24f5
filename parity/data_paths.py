"""The paths through the trainers' loops that the real hymenoptera_data takes, and whether a run's data took them.

hymenoptera_data has 244 train and 153 val images (ants/bees 124/120 and 70/83): unequal classes, and a
val split that ends on a batch of 1. A loop that weighs a batch by the batch size instead of the
batch's size, keeps the best weights on a tie (`>=`), or returns the last weights instead of the best
agrees with the reference on data that never takes these paths, so the suite's data must take each of
them (test_free_running.py and test_replay.py check it from the runs' own records; the faults that
only these paths reveal are in test_fault_injection.py).
"""

from collections import Counter
from pathlib import PurePosixPath

import pytest

SPLITS = ("train", "val")
RUN_PATHS = ("a tie in val accuracy", "a best epoch before the last")  # taken by some strategies' runs, not by the data


def partial_last_batch(count, batch_size):
    return count % batch_size != 0


def val_accuracy_ties(epochs):
    """The epochs whose val accuracy equals the best before them (train_model's best starts at 0.0):
    there `>` and `>=` choose different best epochs and best weights."""
    ties, best = [], 0.0
    for record in epochs:
        if record["val_acc"] == best:
            ties.append(record["epoch"])
        best = max(best, record["val_acc"])
    return ties


def best_before_the_last(history):
    """Whether the best epoch is not the last: then the best weights are not the last weights."""
    return history["best_epoch"] is not None and history["best_epoch"] < len(history["epochs"]) - 1


def class_counts_of_paths(paths):
    """{split: [images per class, in class order]} of relative paths `split/class/file`."""
    counts = {split: Counter() for split in SPLITS}
    for path in paths:
        split, class_name = PurePosixPath(path).parts[:2]
        counts[split][class_name] += 1
    return {split: [counter[name] for name in sorted(counter)] for split, counter in counts.items()}


def paths_taken(class_counts, batch_size, histories):
    """Each path -> where the data took it (splits or strategies; empty: not taken).

    class_counts: {split: [images per class]}; histories: {strategy: {"epochs": [...], "best_epoch": ...}}."""
    taken = {}
    for split in SPLITS:
        counts, total = class_counts[split], sum(class_counts[split])
        taken[f"a partial last batch in {split}"] = (
            [f"{split}: {total} images in batches of {batch_size}"] if partial_last_batch(total, batch_size) else [])
        taken[f"unequal classes in {split}"] = [f"{split}: {counts}"] if len(set(counts)) > 1 else []
    taken["a tie in val accuracy"] = [
        f"{strategy} (epoch {', '.join(map(str, ties))})"
        for strategy, history in histories.items() if (ties := val_accuracy_ties(history["epochs"]))]
    taken["a best epoch before the last"] = [
        f"{strategy} (epoch {history['best_epoch']} of {len(history['epochs'])})"
        for strategy, history in histories.items() if best_before_the_last(history)]
    return taken


def check_every_path_taken(taken, data, fix, every_strategy):
    """Fail, naming what is missing, unless `data` took every path (skip when only some strategies ran and
    only the runs' paths are missing: another strategy may take them)."""
    missing = [path for path, where in taken.items() if not where]
    if missing and not every_strategy and all(path in RUN_PATHS for path in missing):
        pytest.skip(f"{', '.join(missing)}: not taken by the strategies run here; run them all to check")
    found = "; ".join(f"{path}: {', '.join(where)}" for path, where in taken.items() if where)
    assert not missing, (f"not taken by {data}: {', '.join(missing)} (hymenoptera_data takes every one, and the suite "
                         f"cannot tell a loop that mishandles a path its data does not take): {fix}. Taken: {found}")
