"""The replay: both sides run the fixtures' protocol; every recorded quantity must agree.

Each test compares one quantity for one strategy. When both sides load the same LibTorch with the
same thread count the expectation is bit-identical (parity/tolerances.py).
"""

import torch

from parity.compare import check, measure, measure_dict
from parity.divergence import explain_with_trace
from parity.tolerances import for_quantity


def test_eval_logits(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    tolerance = for_quantity("logits", bit_identical_expected)
    comparison = measure(ruby_run.bundle(strategy, "eval_logits")["logits"],
                         python_run.bundle(strategy, "eval_logits")["logits"],
                         quantity="eval logits", tolerance=tolerance, strategy=strategy)
    explain_with_trace([comparison], replay_runs, strategy, "trace_eval", tolerance,
                       when_all_agree="the modules compute alike and the difference lies in how the logits pass ran "
                                      "(the model's mode, no-grad, batching)")
    check(comparison, recorder)


def test_eval_predictions(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    check(measure(torch.tensor(ruby_run.summary(strategy)["eval_predictions"]),
                  torch.tensor(python_run.summary(strategy)["eval_predictions"]),
                  quantity="eval predictions", tolerance=for_quantity("predictions", bit_identical_expected), strategy=strategy),
          recorder)


def test_module_outputs(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    for trace, mode in (("trace_eval", "eval"), ("trace_train", "train")):
        check(measure_dict(ruby_run.bundle(strategy, trace), python_run.bundle(strategy, trace),
                           quantity=f"module output ({mode} mode, first batch)",
                           tolerance=for_quantity("trace", bit_identical_expected), strategy=strategy),
              recorder)


def test_step_losses(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    tolerance = for_quantity("loss", bit_identical_expected)
    ruby = ruby_run.bundle(strategy, "step_losses")
    python = python_run.bundle(strategy, "step_losses")
    comparisons = [measure(ruby[name], python[name], quantity="training loss per step [epoch, step]",
                           tolerance=tolerance, strategy=strategy) for name in python]
    explain_with_trace(comparisons, replay_runs, strategy, "trace_train", tolerance,
                       when_all_agree="the first forward pass agrees and the difference comes from a training step "
                                      "(backward or optimizer): see the first mismatched [epoch, step] above")
    check(comparisons, recorder)


def test_first_step_gradients(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    check(measure_dict(ruby_run.bundle(strategy, "grads_step1"), python_run.bundle(strategy, "grads_step1"),
                       quantity="gradient after the first backward",
                       tolerance=for_quantity("gradients", bit_identical_expected), strategy=strategy),
          recorder)


def test_momentum_buffers(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    assert python_run.bundle(strategy, "momentum_step1"), f"the Python replay recorded no momentum buffer [{strategy}]"
    check([comparison
           for bundle, when in (("momentum_step1", "after the first step"), ("momentum_last", "at the end"))
           for comparison in measure_dict(ruby_run.bundle(strategy, bundle), python_run.bundle(strategy, bundle),
                                          quantity=f"SGD momentum buffer {when}",
                                          tolerance=for_quantity("momentum", bit_identical_expected),
                                          strategy=strategy)], recorder)


def test_state_after_each_epoch(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    tolerance = for_quantity("state", bit_identical_expected)
    comparisons = []
    for epoch in python_run.epochs(strategy):
        comparisons += measure_dict(ruby_run.bundle(strategy, f"state_epoch_{epoch}"),
                                    python_run.bundle(strategy, f"state_epoch_{epoch}"),
                                    quantity="state dict after epoch", tolerance=tolerance,
                                    strategy=strategy, epoch=epoch)
    comparisons += measure_dict(ruby_run.bundle(strategy, "state_best"), python_run.bundle(strategy, "state_best"),
                                quantity="best state dict", tolerance=tolerance, strategy=strategy)
    check(comparisons, recorder)


def test_learning_rate_per_epoch(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    ruby_epochs, python_epochs = ruby_run.summary(strategy)["epochs"], python_run.summary(strategy)["epochs"]
    assert len(ruby_epochs) == len(python_epochs), (
        f"epochs [strategy={strategy}]: ruby ran {len(ruby_epochs)}, python {len(python_epochs)}")
    check([measure(torch.tensor(r["lr"], dtype=torch.float64), torch.tensor(p["lr"], dtype=torch.float64),
                   quantity="learning rate per parameter group", tolerance=for_quantity("lr", bit_identical_expected),
                   strategy=strategy, epoch=p["epoch"])
           for r, p in zip(ruby_epochs, python_epochs)], recorder)


def test_epoch_metrics(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    comparisons = []
    for r, p in zip(ruby_run.summary(strategy)["epochs"], python_run.summary(strategy)["epochs"]):
        for metric in ("train_loss", "train_acc", "val_loss", "val_acc"):
            comparisons.append(measure(torch.tensor(r[metric], dtype=torch.float64),
                                       torch.tensor(p[metric], dtype=torch.float64),
                                       quantity=metric, tolerance=for_quantity("metrics", bit_identical_expected),
                                       strategy=strategy, epoch=p["epoch"]))
    check(comparisons, recorder)


def test_best_epoch_and_accuracy(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    ruby, python = ruby_run.summary(strategy), python_run.summary(strategy)
    check([measure(torch.tensor(ruby["best_epoch"]), torch.tensor(python["best_epoch"]),
                   quantity="best epoch", tolerance=for_quantity("counts", bit_identical_expected), strategy=strategy),
           measure(torch.tensor(ruby["best_acc"], dtype=torch.float64), torch.tensor(python["best_acc"], dtype=torch.float64),
                   quantity="best val accuracy", tolerance=for_quantity("metrics", bit_identical_expected),
                   strategy=strategy)], recorder)


def test_parameter_counts(strategy, replay_runs, bit_identical_expected, recorder):
    python_run, ruby_run = replay_runs
    ruby, python = ruby_run.summary(strategy)["param_counts"], python_run.summary(strategy)["param_counts"]
    check([measure(torch.tensor(ruby[kind]), torch.tensor(python[kind]), quantity=f"{kind} parameter count",
                   tolerance=for_quantity("counts", bit_identical_expected), strategy=strategy)
           for kind in ("trainable", "frozen", "total")], recorder)
