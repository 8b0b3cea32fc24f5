"""The replay protocol of fixtures/README.md: train each strategy on the fixtures' exact batches.

    python reference_py/replay.py [--fixtures fixtures] [--out runs/python] [--strategy NAME ...]

No image decoding and no randomness: every input comes from the fixtures. Writes the run directory
(run.json, STRATEGY/summary.json and bundles) into a temporary folder renamed into place when complete.
The Ruby twin is ruby_port/lib/hymenoptera/replay.rb.
"""

import copy
import hashlib
import json
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what checking the options and claiming --out need (bin/replay's order): LibTorch and the modules that
# load it come once they pass (main's threads.configure), imported by the functions below that use them.
from reference_py import output_claim, recipe, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import UserError, run_cli
from reference_py.observer import OutputsRecorder, Recorder
from reference_py.train import evaluate, train_model

def build_replay_model(strategy, weights, initial):
    """Step 1: the strategy's model with the fixtures' weights (scratch: `initial` whole) and `initial`'s head."""
    from reference_py.strategies import build_model, head, uses_pretrained

    name = head(strategy)
    model = build_model(strategy, weights, num_classes=initial[f"{name}.weight"].shape[0])
    if uses_pretrained(strategy):
        model.get_submodule(name).load_state_dict({"weight": initial[f"{name}.weight"], "bias": initial[f"{name}.bias"]})
    else:
        model.load_state_dict(initial)
    return model


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


def trace(model, inputs, order):
    """Step 3: every module's output, in `order` (model.FORWARD_ORDERS), under no grad."""
    import torch

    from reference_py.model import forward_trace

    with torch.no_grad():
        return forward_trace(model, inputs, order)


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
    import torch
    from torch import nn

    from reference_py.fixtures_format import read_fixture
    from reference_py.model import FORWARD_ORDERS, param_counts
    from reference_py.strategies import architecture, make_optimizer, make_scheduler
    from reference_py.tensor_io import write_bundle

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
    order = FORWARD_ORDERS[architecture(strategy)]
    write_bundle(out / "trace_eval", trace(model, evaluation["images"][:batch_size], order))
    train_copy = copy.deepcopy(model)
    train_copy.train()
    write_bundle(out / "trace_train", trace(train_copy, epochs[0]["images"][:batch_size], order))

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
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", default="fixtures")
    parser.add_argument("--out", default="runs/python")
    parser.add_argument("--strategy", nargs="+", choices=tuple(recipe.STRATEGY_TABLE), dest="strategies",
                        help="strategies to replay (default: every one in the fixtures)")
    parser.add_argument("--record-steps", action="store_true",
                        help="also write the training state after every step (STRATEGY/steps/after_N)")
    parser.add_argument("--resync", metavar="RUN",
                        help="start every step from RUN's state after the same step (RUN made with --record-steps)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    output_claim.check_path_option(args.out, "--out")
    fixtures = output_claim.check_path_option(args.fixtures, "--fixtures")
    with output_claim.OutputDir(args.out, "replay", "--out", signature="run.json") as output:  # before LibTorch loads
        manifest, strategies = checked_fixtures(fixtures, args.strategies)  # before LibTorch loads too
        replay(args, fixtures, manifest, strategies, threads.configure(), output)
    print(f"replay: wrote {args.out}", file=sys.stderr)


def checked_fixtures(fixtures, chosen):
    """The manifest and the strategies to replay (`chosen`, or every one the fixtures have), every bundle the
    replay reads checked against the manifest: JSON and sha256 alone, so bad fixtures cost no LibTorch."""
    from reference_py.fixtures_format import check_fixtures, fix, read_manifest

    manifest = read_manifest(fixtures)
    strategies = chosen or manifest["config"]["strategies"]
    missing = [s for s in strategies if s not in manifest["config"]["strategies"]]
    if missing:
        raise UserError(f"{fixtures} has no fixtures for {', '.join(missing)} (it has "
                        f"{', '.join(manifest['config']['strategies'])}); {fix(fixtures)}")
    check_fixtures(fixtures, manifest, strategies)
    return manifest, strategies


def replay(args, fixtures, manifest, strategies, thread_count, output):
    from reference_py import runtime_info
    from reference_py.fixtures_format import MANIFEST, read_fixture

    print(f"weights: {manifest['weights']['provenance']} weights (sha256 {manifest['weights']['sha256'][:12]}) "
          f"from {fixtures / 'weights.json'}", file=sys.stderr)
    for strategy in strategies if args.resync else ():
        resync_steps(args.resync, strategy)
    weights = read_fixture(fixtures, "weights")
    evaluation = read_fixture(fixtures, "eval")

    with output.write() as out:
        for strategy in strategies:
            (out / strategy).mkdir()
            replay_strategy(strategy, fixtures, manifest["protocol"], weights, evaluation, out / strategy,
                            args.record_steps, args.resync)
        run = runtime_info.describe(thread_count)
        run.update({
            "fixtures_manifest_sha256": hashlib.sha256((fixtures / MANIFEST).read_bytes()).hexdigest(),
            "strategies": strategies,
            "resync": None if args.resync is None else str(args.resync),
            "weights": {"provenance": manifest["weights"]["provenance"], "sha256": manifest["weights"]["sha256"]},
        })
        (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")


if __name__ == "__main__":
    run_cli(main)
