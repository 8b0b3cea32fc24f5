"""The replay protocol of fixtures/README.md: train each strategy on the fixtures' exact batches.

    python reference_py/replay.py [--fixtures fixtures] [--out runs/python] [--strategy NAME ...]

No image decoding and no randomness: every input comes from the fixtures. Writes the run directory
(run.json, STRATEGY/summary.json and bundles) into a temporary folder renamed into place when complete.
The Ruby twin is ruby_port/lib/hymenoptera/replay.rb.
"""

import copy
import hashlib
import json
import math
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch
from torch import nn

from reference_py import atomic, recipe, runtime_info, threads
from reference_py.checksums import file_sha256
from reference_py.export_fixtures import FORMAT as FIXTURES_FORMAT, GENERATOR_VERSION, PROTOCOL
from reference_py.errors import ArgumentParser, UserError, json_type, read_json, run_cli
from reference_py.observer import OutputsRecorder, Recorder
from reference_py.model import FORWARD_ORDERS, HEAD_FEATURES, forward_trace, param_counts
from reference_py.strategies import (STRATEGIES, architecture, build_model, head, make_optimizer, make_scheduler,
                                     uses_pretrained)
from reference_py.tensor_io import BundleError, read_bundle, read_index, write_bundle
from reference_py.train import evaluate, train_model

FIX = "regenerate them with `python reference_py/export_fixtures.py --out {fixtures}`"
COUNTS = recipe.COUNTS
RATES = recipe.RATES
VERSIONS = ("python", "torch", "torchvision", "libtorch")
IMAGE_SHAPE = [3, None, None]  # RGB, any size (the protocol's 224 x 224, or a test's smaller images)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def manifest_problem(manifest):
    """What makes `manifest` unusable for the replay (the first thing found), or None."""
    if not isinstance(manifest, dict):
        return f"holds a JSON {json_type(manifest)}, not an object"
    if manifest.get("format") != FIXTURES_FORMAT:
        return f"format is {json.dumps(manifest.get('format'))}, expected {json.dumps(FIXTURES_FORMAT)}"
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return (f"generator_version is {json.dumps(manifest.get('generator_version'))}, this replay reads "
                f"{GENERATOR_VERSION}")
    for key in ("config", "protocol", "weights", "versions", "bundles", "files"):
        if not isinstance(manifest.get(key), dict):
            return f"{key} is missing or not an object"
    versions = manifest["versions"]
    bad = [k for k in VERSIONS if not (k in versions and (versions[k] is None or isinstance(versions[k], str)))]
    if bad:
        return f"versions.{bad[0]} is missing or not a version string"
    protocol = manifest["protocol"]
    for key in COUNTS:
        if not (isinstance(protocol.get(key), int) and not isinstance(protocol.get(key), bool) and protocol[key] >= 1):
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, expected a whole number of at least 1"
    for key in RATES:
        if not (is_number(protocol.get(key)) and math.isfinite(protocol[key]) and protocol[key] >= 0):
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, expected a finite number of at least 0"
    # the protocol is the generator's: a value edited in the manifest would replay another training than the export's
    for key in [*PROTOCOL, *(k for k in protocol if k not in PROTOCOL)]:
        if key not in protocol or key not in PROTOCOL or protocol[key] != PROTOCOL[key]:
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, generator {GENERATOR_VERSION} writes {json.dumps(PROTOCOL.get(key))}"
    strategies = manifest["config"].get("strategies")
    if not (isinstance(strategies, list) and strategies and all(s in STRATEGIES for s in strategies)):
        return f"config.strategies is {json.dumps(strategies)}, expected a list of {', '.join(STRATEGIES)}"
    if not (isinstance(manifest["weights"].get("sha256"), str) and isinstance(manifest["weights"].get("provenance"), str)):
        return "weights lacks provenance or sha256"
    return None


def read_manifest(fixtures):
    if Path(fixtures).exists() and not Path(fixtures).is_dir():
        raise UserError(f"{fixtures} is a file, not a fixtures folder; pass --fixtures the folder export_fixtures.py "
                        f"wrote (e.g. --fixtures fixtures)")
    path = Path(fixtures) / "manifest.json"
    manifest = read_json(path, FIX.format(fixtures=fixtures), missing="not found: no fixtures there")
    problem = manifest_problem(manifest)
    if problem:
        raise UserError(f"{path} is not a fixtures manifest this replay reads: {problem}; {FIX.format(fixtures=fixtures)}")
    return manifest


def describe_tensor(entry):
    return f"{entry.get('dtype')} {entry.get('shape')}"


def check_bundle(fixtures, manifest, name, expected):
    """The bundle's index against the manifest's record of it (names, dtypes, shapes) and the protocol's
    needs (`expected`: tensor name -> (dtype, shape pattern with None for any size))."""
    fix = FIX.format(fixtures=fixtures)
    index_path = Path(fixtures) / f"{name}.json"
    listed = manifest["bundles"].get(name)
    if not isinstance(listed, list):
        raise UserError(f"{fixtures}/manifest.json lists no bundle {name}; {fix}")
    try:
        tensors = read_index(Path(fixtures) / name)["tensors"]
    except BundleError as error:
        raise UserError(f"{error}; {fix}") from None
    entries = {t.get("name"): t for t in tensors if isinstance(t, dict)}
    for record in listed:
        entry = entries.get(record.get("name"))
        if entry is None or (entry.get("dtype"), entry.get("shape")) != (record.get("dtype"), record.get("shape")):
            found = "missing" if entry is None else describe_tensor(entry)
            raise UserError(f"{index_path}: {record.get('name')} is {found}, the manifest says "
                            f"{describe_tensor(record)}; {fix}")
    for tensor_name, (dtype, pattern) in expected.items():
        entry = entries.get(tensor_name)
        shape = entry.get("shape") if entry else None
        fits = (entry is not None and entry.get("dtype") == dtype and isinstance(shape, list)
                and len(shape) == len(pattern) and all(p is None or p == d for p, d in zip(pattern, shape)))
        if not fits:
            wanted = "[" + ", ".join("N" if p is None else str(p) for p in pattern) + "]"
            found = "missing" if entry is None else describe_tensor(entry)
            raise UserError(f"{index_path}: {tensor_name} is {found}, the replay needs {dtype} {wanted}; {fix}")
    return entries


def check_fixtures(fixtures, manifest, strategies):
    """Every bundle the replay reads, checked against the manifest before anything is computed."""
    for name in ["eval"] + [f"strategies/{s}/epoch_{k}" for s in strategies for k in range(manifest["protocol"]["epochs"])]:
        entries = check_bundle(fixtures, manifest, name, {"images": ("float32", [None, *IMAGE_SHAPE]),
                                                          "labels": ("int64", [None])})
        count = entries["images"]["shape"][0]
        if count < 1 or entries["labels"]["shape"] != [count]:
            raise UserError(f"{fixtures}/{name}.json: {count} images but labels {entries['labels']['shape']}; "
                            f"{FIX.format(fixtures=fixtures)}")
    for strategy in strategies:
        check_bundle(fixtures, manifest, f"strategies/{strategy}/initial",
                     {f"{head(strategy)}.weight": ("float32", [None, HEAD_FEATURES[architecture(strategy)]]),
                      f"{head(strategy)}.bias": ("float32", [None])})
    check_bundle(fixtures, manifest, "weights", {})
    names = ["weights", "eval"] + [f"strategies/{s}/{b}" for s in strategies
                                   for b in ["initial", *(f"epoch_{k}" for k in range(manifest["protocol"]["epochs"]))]]
    check_files(fixtures, manifest, names)
    for strategy in strategies:
        check_meta(fixtures, f"strategies/{strategy}/initial", {"strategy": strategy})
        for epoch in range(manifest["protocol"]["epochs"]):
            check_meta(fixtures, f"strategies/{strategy}/epoch_{epoch}", {"strategy": strategy, "epoch": epoch})


def check_files(fixtures, manifest, names):
    """Each bundle's two files against the sha256 the manifest lists: a file of another export, or changed, is refused."""
    fix = FIX.format(fixtures=fixtures)
    for relative in [f"{name}.{ext}" for name in names for ext in ("json", "bin")]:
        path = Path(fixtures) / relative
        listed = manifest["files"].get(relative)
        if not isinstance(listed, str):
            raise UserError(f"{fixtures}/manifest.json lists no sha256 for {relative}; {fix}")
        if not path.is_file():
            raise UserError(f"{path} not found, though the manifest lists it; {fix}")
        found = file_sha256(path)
        if found != listed:
            raise UserError(f"{path}: sha256 {found[:12]}, the manifest lists {listed[:12]} (a file of another export, "
                            f"or changed); {fix}")


def check_meta(fixtures, name, expected):
    """A bundle's own record of its strategy (and epoch) against its place: a bundle moved from another strategy is refused."""
    meta = read_index(Path(fixtures) / name).get("meta")
    found = {key: meta.get(key) if isinstance(meta, dict) else None for key in expected}
    if found != expected:
        def describe(record):
            return ", ".join(f"{key} {json.dumps(value)}" for key, value in record.items())
        raise UserError(f"{fixtures}/{name}.json holds {describe(found)}, its place is {describe(expected)} (a bundle "
                        f"moved from another strategy or epoch); {FIX.format(fixtures=fixtures)}")


def read_fixture(fixtures, name):
    try:
        return read_bundle(Path(fixtures) / name)
    except BundleError as error:
        raise UserError(f"{error}; {FIX.format(fixtures=fixtures)}") from None


def build_replay_model(strategy, weights, initial):
    """Step 1: the strategy's model with the fixtures' weights (scratch: `initial` whole) and `initial`'s head."""
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
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, dest="strategies",
                        help="strategies to replay (default: every one in the fixtures)")
    parser.add_argument("--record-steps", action="store_true",
                        help="also write the training state after every step (STRATEGY/steps/after_N)")
    parser.add_argument("--resync", metavar="RUN",
                        help="start every step from RUN's state after the same step (RUN made with --record-steps)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    atomic.check_path_option(args.out, "--out")
    fixtures = atomic.check_path_option(args.fixtures, "--fixtures")
    thread_count = threads.configure()
    with atomic.OutputDir(args.out, "replay", "--out", signature="run.json") as output:
        replay(args, fixtures, thread_count, output)
    print(f"replay: wrote {args.out}", file=sys.stderr)


def replay(args, fixtures, thread_count, output):
    manifest = read_manifest(fixtures)
    strategies = args.strategies or manifest["config"]["strategies"]
    missing = [s for s in strategies if s not in manifest["config"]["strategies"]]
    if missing:
        raise UserError(f"{fixtures} has no fixtures for {', '.join(missing)} (it has "
                        f"{', '.join(manifest['config']['strategies'])}); {FIX.format(fixtures=fixtures)}")
    check_fixtures(fixtures, manifest, strategies)
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
            "fixtures_manifest_sha256": hashlib.sha256((fixtures / "manifest.json").read_bytes()).hexdigest(),
            "strategies": strategies,
            "resync": None if args.resync is None else str(args.resync),
            "weights": {"provenance": manifest["weights"]["provenance"], "sha256": manifest["weights"]["sha256"]},
        })
        (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")


if __name__ == "__main__":
    run_cli(main)
