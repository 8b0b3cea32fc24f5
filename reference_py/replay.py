"""The replay protocol of fixtures/README.md: train each strategy on the fixtures' exact batches.

    python reference_py/replay.py [--fixtures fixtures] [--out runs/python] [--strategy NAME ...]

No image decoding and no randomness: every input comes from the fixtures. Writes the run directory
(run.json, STRATEGY/summary.json and bundles) into a temporary folder renamed into place when complete.
The Ruby twin is ruby_port/lib/hymenoptera/replay.rb.
"""

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch
from torch import nn

from reference_py import atomic, runtime_info, threads
from reference_py.errors import UserError, read_json, run_cli
from reference_py.observer import OutputsRecorder, Recorder
from reference_py.model import FORWARD_ORDER, forward_trace, param_counts, resnet18_with_head
from reference_py.strategies import STRATEGIES, make_optimizer, make_scheduler, prepare, uses_pretrained
from reference_py.tensor_io import BundleError, read_bundle, write_bundle
from reference_py.train import evaluate, train_model

FIX = "regenerate them with `python reference_py/export_fixtures.py --out {fixtures}`"


def read_manifest(fixtures):
    path = Path(fixtures) / "manifest.json"
    manifest = read_json(path, FIX.format(fixtures=fixtures), missing="not found: no fixtures there")
    missing = [key for key in ("protocol", "config", "weights") if key not in manifest]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; {FIX.format(fixtures=fixtures)}")
    return manifest


def read_fixture(fixtures, name):
    try:
        return read_bundle(Path(fixtures) / name)
    except BundleError as error:
        raise UserError(f"{error}; {FIX.format(fixtures=fixtures)}") from None


def build_replay_model(strategy, weights, initial):
    """Step 1: ResNet-18 with the fixtures' weights (scratch: `initial` whole) and `initial`'s fc."""
    if uses_pretrained(strategy):
        model = resnet18_with_head(weights, num_classes=initial["fc.weight"].shape[0])
        model.fc.load_state_dict({"weight": initial["fc.weight"], "bias": initial["fc.bias"]})
    else:
        model = resnet18_with_head(None, num_classes=initial["fc.weight"].shape[0])
        model.load_state_dict(initial)
    return prepare(strategy, model)


def batches(images, labels, batch_size):
    """A data loader's batches, cut in order from the fixtures' tensors."""
    return [(images[start:start + batch_size], labels[start:start + batch_size])
            for start in range(0, len(images), batch_size)]


class EpochBatches:
    """The replay's training data loader: its K-th pass yields the batches of the fixtures' epoch K."""

    def __init__(self, epochs, batch_size):
        self._passes = iter([batches(epoch["images"], epoch["labels"], batch_size) for epoch in epochs])

    def __iter__(self):
        return iter(next(self._passes))


def trace(model, inputs):
    """Step 3: every module's output, in FORWARD_ORDER, under no grad."""
    with torch.no_grad():
        outputs = forward_trace(model, inputs)
    return {name: outputs[name] for name in FORWARD_ORDER}


def resync_steps(run, strategy):
    """The recorded steps of `run` for `strategy`, where --resync reads them."""
    steps = Path(run) / strategy / "steps"
    if not (steps / "after_0.json").is_file():
        raise UserError(f"{run} has no recorded steps for {strategy}; make it with "
                        f"`python reference_py/replay.py --record-steps --out {run}`")
    return steps


def replay_strategy(strategy, fixtures, protocol, weights, evaluation, out, record_steps=False, resync=None):
    """Steps 1 to 6 of the protocol for one strategy, writing its part of the run directory into `out`.

    record_steps: also the training state after every step (out/steps/after_N); resync: a run made with
    record_steps, whose state after each step the next step starts from (fixtures/README.md)."""
    batch_size = protocol["batch_size"]
    initial = read_fixture(fixtures, f"strategies/{strategy}/initial")
    epochs = [read_fixture(fixtures, f"strategies/{strategy}/epoch_{k}") for k in range(protocol["epochs"])]
    model = build_replay_model(strategy, weights, initial)
    criterion = nn.CrossEntropyLoss()

    val_batches = batches(evaluation["images"], evaluation["labels"], batch_size)
    initial_outputs = OutputsRecorder()
    evaluate(model, criterion, val_batches, initial_outputs)
    eval_logits = torch.cat(initial_outputs.outputs)
    write_bundle(out / "eval_logits", {"logits": eval_logits})
    _, eval_predictions = torch.max(eval_logits, 1)

    model.eval()
    write_bundle(out / "trace_eval", trace(model, evaluation["images"][:batch_size]))
    train_copy = copy.deepcopy(model)
    train_copy.train()
    write_bundle(out / "trace_train", trace(train_copy, epochs[0]["images"][:batch_size]))

    optimizer = make_optimizer(strategy, model, protocol["lr"], protocol["momentum"],
                               protocol["backbone_lr"], protocol["head_lr"])
    scheduler = make_scheduler(optimizer, protocol["step_size"], protocol["gamma"])
    steps_to = resync_from = None
    if record_steps:
        steps_to = out / "steps"
        steps_to.mkdir()
    if resync is not None:
        resync_from = resync_steps(resync, strategy)
    recorder = Recorder(states_to=out, steps_to=steps_to, resync_from=resync_from)
    model, history = train_model(model, criterion, optimizer, scheduler,
                                 {"train": EpochBatches(epochs, batch_size), "val": val_batches},
                                 len(epochs), progress=False, observer=recorder)
    recorder.write(out)
    write_bundle(out / "state_best", model.state_dict())
    summary = {"strategy": strategy, "epochs": history["epochs"], "best_epoch": history["best_epoch"],
               "best_acc": history["best_acc"],
               "eval_predictions": eval_predictions.tolist(), "param_counts": param_counts(model)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", default="fixtures")
    parser.add_argument("--out", default="runs/python")
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, dest="strategies",
                        help="strategies to replay (default: every one in the fixtures)")
    parser.add_argument("--record-steps", action="store_true",
                        help="also write the training state after every step (STRATEGY/steps/after_N)")
    parser.add_argument("--resync", metavar="RUN",
                        help="start every step from RUN's state after the same step (RUN made with --record-steps)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    thread_count = threads.configure()
    fixtures = Path(args.fixtures)
    manifest = read_manifest(fixtures)
    strategies = args.strategies or manifest["config"]["strategies"]
    missing = [s for s in strategies if s not in manifest["config"]["strategies"]]
    if missing:
        raise UserError(f"{fixtures} has no fixtures for {', '.join(missing)} (it has "
                        f"{', '.join(manifest['config']['strategies'])}); {FIX.format(fixtures=fixtures)}")
    print(f"weights: {manifest['weights']['provenance']} weights (sha256 {manifest['weights']['sha256'][:12]}) "
          f"from {fixtures / 'weights.json'}", file=sys.stderr)
    for strategy in strategies if args.resync else ():
        resync_steps(args.resync, strategy)
    weights = read_fixture(fixtures, "weights")
    evaluation = read_fixture(fixtures, "eval")

    with atomic.atomic_dir(args.out) as out:
        for strategy in strategies:
            (out / strategy).mkdir()
            replay_strategy(strategy, fixtures, manifest["protocol"], weights, evaluation, out / strategy,
                            args.record_steps, args.resync)
        run = runtime_info.describe(thread_count)
        run.update({
            "fixtures_manifest_sha256": hashlib.sha256((fixtures / "manifest.json").read_bytes()).hexdigest(),
            "strategies": strategies,
            "resync": None if args.resync is None else str(args.resync),
            "weights": {"provenance": manifest["weights"]["provenance"], "sha256": manifest["weights"]["sha256"]},
        })
        (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(f"replay: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
