"""The replay: both sides run the fixtures' protocol; every recorded quantity must agree.

Each test compares one quantity for one strategy. When both sides load the same LibTorch with the
same thread count the expectation is bit-identical; across stacks, within a multiple of the
reference's own noise floor (parity/tolerances.py, parity/conftest.py).
"""

import json

import torch

from parity import data_paths
from parity.compare import check, judge, judge_dict
from parity.divergence import explain_with_trace
from parity.settings import ALL_STRATEGIES, STRATEGIES
from parity.tolerances import for_quantity


def trace_tolerance(replays):
    return for_quantity("trace", replays.same_stack)


def scalars(ruby, python, floor, key, dtype=torch.float64):
    """One summary.json entry of each run as tensors (floor: None when there is no floor run)."""
    return (torch.tensor(ruby[key], dtype=dtype), torch.tensor(python[key], dtype=dtype),
            None if floor is None else torch.tensor(floor[key], dtype=dtype))


def test_eval_logits(strategy, replay_runs, recorder):
    ruby, python, floor = replay_runs.bundles(strategy, "eval_logits")
    comparison = judge(ruby["logits"], python["logits"], floor and floor["logits"], kind="logits",
                       same_stack=replay_runs.same_stack, quantity="eval logits", strategy=strategy)
    explain_with_trace([comparison], replay_runs, strategy, "trace_eval", trace_tolerance(replay_runs),
                       when_all_agree="the modules compute alike and the difference lies in how the logits pass ran "
                                      "(the model's mode, no-grad, batching)")
    check(comparison, recorder)


def test_eval_predictions(strategy, replay_runs, recorder):
    ruby, python, floor = replay_runs.summaries(strategy)
    check(judge(*scalars(ruby, python, floor, "eval_predictions", torch.int64), kind="predictions",
                same_stack=replay_runs.same_stack, quantity="eval predictions", strategy=strategy), recorder)


def test_module_outputs(strategy, replay_runs, recorder):
    for trace, mode in (("trace_eval", "eval"), ("trace_train", "train")):
        check(judge_dict(*replay_runs.bundles(strategy, trace), kind="trace", same_stack=replay_runs.same_stack,
                         quantity=f"module output ({mode} mode, first batch)", strategy=strategy), recorder)


def test_step_losses(strategy, replay_runs, recorder):
    ruby, python, floor = replay_runs.bundles(strategy, "step_losses")
    comparison = judge(ruby["step_losses"], python["step_losses"], floor and floor["step_losses"], kind="loss",
                       same_stack=replay_runs.same_stack, quantity="training loss per step [epoch, step]",
                       strategy=strategy)
    explain_with_trace([comparison], replay_runs, strategy, "trace_train", trace_tolerance(replay_runs),
                       when_all_agree="the first forward pass agrees and the difference comes from a training step "
                                      "(backward or optimizer): see the first mismatched [epoch, step] above")
    check(comparison, recorder)


def test_first_step_gradients(strategy, replay_runs, recorder):
    check(judge_dict(*replay_runs.bundles(strategy, "grads_step1"), kind="gradients",
                     same_stack=replay_runs.same_stack, quantity="gradient after the first backward",
                     strategy=strategy), recorder)


def test_momentum_buffers(strategy, replay_runs, recorder):
    comparisons = []
    for bundle, when in (("momentum_step1", "after the first step"), ("momentum_last", "at the end")):
        ruby, python, floor = replay_runs.bundles(strategy, bundle)
        assert python, f"the Python replay recorded no momentum buffer {when} [{strategy}]"
        comparisons += judge_dict(ruby, python, floor, kind="momentum", same_stack=replay_runs.same_stack,
                                  quantity=f"SGD momentum buffer {when}", strategy=strategy)
    check(comparisons, recorder)


def test_state_after_each_epoch(strategy, replay_runs, recorder):
    comparisons = []
    for epoch in replay_runs.python.epochs(strategy):
        comparisons += judge_dict(*replay_runs.bundles(strategy, f"state_epoch_{epoch}"), kind="state",
                                  same_stack=replay_runs.same_stack, quantity="state dict after epoch",
                                  strategy=strategy, epoch=epoch)
    comparisons += judge_dict(*replay_runs.bundles(strategy, "state_best"), kind="state",
                              same_stack=replay_runs.same_stack, quantity="best state dict", strategy=strategy)
    check(comparisons, recorder)


def test_learning_rate_per_epoch(strategy, replay_runs, recorder):
    ruby, python, floor = (s and s["epochs"] for s in replay_runs.summaries(strategy))
    assert len(ruby) == len(python), f"epochs [strategy={strategy}]: ruby ran {len(ruby)}, python {len(python)}"
    check([judge(*scalars(r, p, f, "lr"), kind="lr", same_stack=replay_runs.same_stack,
                 quantity="learning rate per parameter group", strategy=strategy, epoch=p["epoch"])
           for r, p, f in zip(ruby, python, floor or [None] * len(python))], recorder)


def test_epoch_metrics(strategy, replay_runs, recorder):
    ruby, python, floor = (s and s["epochs"] for s in replay_runs.summaries(strategy))
    check([judge(*scalars(r, p, f, metric), kind="metrics", same_stack=replay_runs.same_stack, quantity=metric,
                 strategy=strategy, epoch=p["epoch"])
           for r, p, f in zip(ruby, python, floor or [None] * len(python))
           for metric in ("train_loss", "train_acc", "val_loss", "val_acc")], recorder)


def test_best_epoch_and_accuracy(strategy, replay_runs, recorder):
    # best_epoch -1: no epoch improved on an accuracy of 0
    ruby, python, floor = (s and {**s, "best_epoch": -1 if s["best_epoch"] is None else s["best_epoch"]}
                           for s in replay_runs.summaries(strategy))
    check([judge(*scalars(ruby, python, floor, "best_epoch", torch.int64), kind="counts",
                 same_stack=replay_runs.same_stack, quantity="best epoch (-1: none)", strategy=strategy),
           judge(*scalars(ruby, python, floor, "best_acc"), kind="metrics", same_stack=replay_runs.same_stack,
                 quantity="best val accuracy", strategy=strategy)], recorder)


def test_parameter_counts(strategy, replay_runs, recorder):
    ruby, python, _ = replay_runs.summaries(strategy)
    # the model's shape does not depend on the stack: exact on any
    check([judge(torch.tensor(ruby["param_counts"][kind]), torch.tensor(python["param_counts"][kind]), None,
                 kind="counts", same_stack=True, quantity=f"{kind} parameter count", strategy=strategy)
           for kind in ("trainable", "frozen", "total")], recorder)


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
