"""Write fixtures/: what the replay protocol needs, decoded and transformed once, by Python.

    python reference_py/export_fixtures.py [--out fixtures] [--data-dir DIR] [--weights net.pth] [--seed 0]

The layout, the manifest and the protocol are described in fixtures/README.md; the format's constants
and its reader are reference_py/fixtures_format.py, which the replays read the fixtures with.
Deterministic: the same data, weights and seed give byte-identical files. ensure_fixtures()
regenerates only when the fixtures are missing or stale.
"""

import json
import os
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what checking the options and claiming --out need: LibTorch, torchvision, the images and the weights load
# once they pass (main's threads.configure), imported by the functions below that use them.
from reference_py import ROOT, fixtures_format, output_claim, threads
from reference_py.arguments import ArgumentParser
from reference_py.checksums import file_sha256
from reference_py.errors import UserError, check_count, check_seed, run_cli
from reference_py.model import HEAD_FEATURES, resnet18_with_head, seeded_head
from reference_py.strategies import RESNET18_STRATEGIES, STRATEGIES, architecture, head, uses_pretrained
from reference_py.tensor_io import read_index, write_bundle

# Images per class (ants, bees), unequal and ending on a batch of 1, as hymenoptera_data's val (70/83;
# its train is 124/120): 13 eval images in batches of 4, 4, 4, 1 and 9 replay images in 4, 4, 1 (first,
# middle and last step). With these, some strategies' val accuracy ties and their best epoch is not the
# last (parity/test_replay.py checks it).
EVAL_PER_CLASS = [6, 7]
REPLAY_PER_CLASS = [5, 4]
NUM_CLASSES = 2
KEPT = "README.md"  # in --out, not written by an export: a clone's fixtures/README.md (FixturesFolder)


def strategy_seeds(seed, strategy):
    """The seeds of one strategy's head initialisation, loader order and train transforms."""
    base = seed + 10 * (STRATEGIES.index(strategy) + 1)
    return {"init": base + 1, "loader": base + 2, "transforms": base + 3}


def class_counts(per_class, classes, option):
    """`per_class` (one count for every class, or a list of one per class in class order) as one count per class."""
    if isinstance(per_class, int):
        return [per_class] * len(classes)
    if len(per_class) != len(classes):
        raise UserError(f"{option} {' '.join(map(str, per_class))}: {len(per_class)} counts for {len(classes)} "
                        f"classes ({', '.join(classes)}); give one count for every class, or one per class in that order")
    return list(per_class)


def class_subset(dataset, per_class, option):
    """The first per_class[k] images of class k, for every class, in ImageFolder order (class by class)."""
    indices = []
    counts = class_counts(per_class, dataset.classes, option)
    for class_index, (class_name, count) in enumerate(zip(dataset.classes, counts)):
        members = [i for i, target in enumerate(dataset.targets) if target == class_index][:count]
        if len(members) < count:
            raise UserError(f"{Path(dataset.root) / class_name} has {len(members)} images; the fixtures need at "
                            f"least {count} of {class_name} ({option}): add images or pass a data dir with more")
        indices += members
    return indices


def relative_paths(dataset, indices):
    return [Path(dataset.samples[i][0]).relative_to(Path(dataset.root).parent).as_posix() for i in indices]


def display_path(path):
    """A path relative to the repository root when it lies inside it (so the manifest does not name a clone)."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def initial_state(strategy, seed):
    """The head a strategy starts from; for scratch, the whole freshly initialised model."""
    import torch

    if uses_pretrained(strategy):
        layer = seeded_head(seed, in_features=HEAD_FEATURES[architecture(strategy)], num_classes=NUM_CLASSES)
        return {f"{head(strategy)}.weight": layer.weight.detach(), f"{head(strategy)}.bias": layer.bias.detach()}
    torch.manual_seed(seed)
    return resnet18_with_head(None, NUM_CLASSES).state_dict()


def export_eval(out, val_set, indices, class_names):
    import torch

    images = torch.stack([val_set[i][0] for i in indices])
    labels = torch.tensor([val_set.targets[i] for i in indices], dtype=torch.int64)
    write_bundle(out / "eval", {"images": images, "labels": labels},
                 meta={"paths": relative_paths(val_set, indices), "class_names": class_names,
                       "transforms": "Resize(256), CenterCrop(224), ToTensor(), Normalize(MEAN, STD)"})


def export_strategy(folder, strategy, train_set, indices, seeds):
    """initial and epoch_K: the loader's order and the images exactly as the train transforms made them."""
    import torch
    from torch.utils.data import Subset

    from reference_py.data import make_dataloader

    folder.mkdir(parents=True)
    write_bundle(folder / "initial", initial_state(strategy, seeds["init"]), meta={"strategy": strategy})
    loader = make_dataloader(Subset(train_set, indices), fixtures_format.PROTOCOL["batch_size"], seeds["loader"])
    torch.manual_seed(seeds["transforms"])
    for epoch in range(fixtures_format.PROTOCOL["epochs"]):
        batches = list(loader)
        write_bundle(folder / f"epoch_{epoch}", {
            "order": torch.tensor(loader.sampler.orders[epoch], dtype=torch.int64),
            "images": torch.cat([inputs for inputs, _ in batches]),
            "labels": torch.cat([labels for _, labels in batches]),
        }, meta={"strategy": strategy, "epoch": epoch,
                 "transforms": "RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(), Normalize(MEAN, STD)"})


def build_manifest(out, config, weights, data_dir, standin, data_sha256, class_names, replay_paths, eval_paths):
    import torch

    from reference_py import runtime_info

    names = fixtures_format.bundle_names(config["strategies"], fixtures_format.PROTOCOL["epochs"])
    bundles = {name: [{k: t[k] for k in ("name", "dtype", "shape")} for t in read_index(out / name)["tensors"]]
               for name in names}
    files = {f"{name}.{ext}": file_sha256(out / f"{name}.{ext}") for name in names for ext in ("json", "bin")}
    info = runtime_info.describe(torch.get_num_threads())
    return {
        "format": fixtures_format.FORMAT,
        "generator_version": fixtures_format.GENERATOR_VERSION,
        "config": config,
        "protocol": fixtures_format.PROTOCOL,
        "seeds": {"base": config["seed"],
                  "strategies": {s: strategy_seeds(config["seed"], s) for s in config["strategies"]}},
        "weights": {"provenance": weights.provenance, "sha256": weights.sha256},
        "versions": {"python": info["python"], "torch": info["torch"], "torchvision": info["torchvision"],
                     "libtorch": info["libtorch"]},
        "data": {"dir": display_path(data_dir), "standin": standin, "sha256": data_sha256,
                 "class_names": class_names},
        "replay_subset": {"train": replay_paths, "val": eval_paths},
        "bundles": bundles,
        "files": files,
    }


def exported_files(folder):
    """The files an export wrote into `folder` before output_claim.MARKER existed (its manifest lists them), or None."""
    manifest = fixtures_format.existing_manifest(folder)
    if not isinstance(manifest, dict) or manifest.get("format") != fixtures_format.FORMAT or not isinstance(manifest.get("files"), dict):
        return None
    return set(manifest["files"]) | {fixtures_format.MANIFEST}


class FixturesFolder(output_claim.OutputDir):
    """The claim of --out, with export_fixtures' own rule: the README.md beside the fixtures (a clone's
    fixtures/README.md, committed: the format) was not written by an export, yet it is kept. The claim does
    not weigh it, and the new folder takes it over when it replaces the old (a hard link: the very same file).
    """

    def files(self, folder):
        return [name for name in super().files(folder) if name != KEPT]

    def _commit(self, tmp):
        kept = self.target / KEPT
        if os.path.lexists(kept) and not os.path.lexists(tmp / KEPT):
            os.link(kept, tmp / KEPT, follow_symlinks=False)
        super()._commit(tmp)


def fixtures_output(out):
    """--out, claimed: new, empty, or fixtures an export wrote; a README.md beside them is kept."""
    return FixturesFolder(out, "export_fixtures", "--out", legacy=exported_files)


def export(out, data_dir, weights, standin, config):
    """Check the images, then write every fixture file into a new folder that replaces `out` whole."""
    with fixtures_output(out) as output:
        return export_into(output, data_dir, weights, standin, config)


def export_into(output, data_dir, weights, standin, config):
    from reference_py.data import fingerprint, image_datasets

    image_sets = image_datasets(data_dir)
    train_set, val_set = image_sets["train"], image_sets["val"]
    if len(train_set.classes) != NUM_CLASSES:
        raise UserError(f"{data_dir} has classes {train_set.classes}; the replay protocol's fc is Linear(512, 2): "
                        f"give it exactly two classes")
    eval_indices = class_subset(val_set, config["eval_per_class"], "--eval-per-class")
    replay_indices = class_subset(train_set, config["replay_per_class"], "--replay-per-class")
    with output.write() as out:
        write_bundle(out / "weights", weights.state_dict, meta={"provenance": weights.provenance, "sha256": weights.sha256})
        export_eval(out, val_set, eval_indices, train_set.classes)
        for strategy in config["strategies"]:
            export_strategy(out / "strategies" / strategy, strategy, train_set, replay_indices,
                            strategy_seeds(config["seed"], strategy))
        manifest = build_manifest(out, config, weights, data_dir, standin, fingerprint(data_dir), train_set.classes,
                                  relative_paths(train_set, replay_indices), relative_paths(val_set, eval_indices))
        (out / fixtures_format.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def make_config(seed=0, strategies=RESNET18_STRATEGIES, eval_per_class=EVAL_PER_CLASS, replay_per_class=REPLAY_PER_CLASS):
    """The export's settings; a per-class count is one number for every class or a list, one per class."""
    def as_json(per_class):  # one number, also from the command line's `--eval-per-class N`, is every class's
        if isinstance(per_class, int):
            return per_class
        return per_class[0] if len(per_class) == 1 else list(per_class)

    return {"seed": seed, "strategies": list(strategies), "eval_per_class": as_json(eval_per_class),
            "replay_per_class": as_json(replay_per_class)}


def stale_reason(out, manifest, config, weights, data_sha256):
    """Why the fixtures in `out` must be regenerated, or None when they are up to date."""
    if manifest is None:
        return "no manifest"
    if manifest.get("generator_version") != fixtures_format.GENERATOR_VERSION:
        return f"generator version {manifest.get('generator_version')} (now {fixtures_format.GENERATOR_VERSION})"
    if manifest.get("config") != config:
        return "other settings"
    if manifest.get("weights", {}).get("sha256") != weights.sha256:
        return "the weights changed"
    if manifest.get("data", {}).get("sha256") != data_sha256:
        return "the images changed"
    for name, sha256 in manifest.get("files", {}).items():
        path = Path(out) / name
        if not path.is_file() or file_sha256(path) != sha256:
            return f"{name} is missing or changed"
    return None


def ensure_fixtures(out=ROOT / "fixtures", data_dir=None, weights_path=ROOT / "net.pth", **settings):
    """Regenerate the fixtures only when missing or stale; returns the manifest."""
    from reference_py.data import fingerprint, resolve_data_dir
    from reference_py.pretrained import load_or_make

    config = make_config(**settings)
    data_dir, standin = resolve_data_dir(data_dir)
    weights = load_or_make(None, default=weights_path)
    manifest = fixtures_format.existing_manifest(out)
    reason = stale_reason(out, manifest, config, weights, fingerprint(data_dir))
    if reason is None:
        return manifest
    print(f"export_fixtures: regenerating {out} ({reason})", file=sys.stderr)
    return export(out, data_dir, weights, standin, config)


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="fixtures")
    parser.add_argument("--data-dir", help="hymenoptera_data's layout (default: the generated stand-in)")
    parser.add_argument("--weights", help="net.pth from reference_py/pretrained.py (default: ./net.pth, made if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, default=list(RESNET18_STRATEGIES), dest="strategies",
                        help="default: the four ResNet-18 strategies; vgg16_feature_extractor needs fixtures of its own "
                             "(--weights vgg16.pth, from pretrained.py --arch vgg16)")
    parser.add_argument("--eval-per-class", type=int, nargs="+", default=EVAL_PER_CLASS, metavar="N",
                        help="val images per class: one number for every class, or one per class in class order "
                             f"(default {' '.join(map(str, EVAL_PER_CLASS))})")
    parser.add_argument("--replay-per-class", type=int, nargs="+", default=REPLAY_PER_CLASS, metavar="N",
                        help="train images per class, as --eval-per-class "
                             f"(default {' '.join(map(str, REPLAY_PER_CLASS))})")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    output_claim.check_path_option(args.out, "--out")
    check_seed(args.seed)
    for option in ("eval_per_class", "replay_per_class"):
        for count in getattr(args, option):
            check_count(count, "--" + option.replace("_", "-"))
    arches = {architecture(strategy) for strategy in args.strategies}
    if len(arches) > 1:
        raise UserError(f"--strategy {' '.join(args.strategies)}: one fixtures folder holds one architecture's "
                        f"strategies (here {', '.join(sorted(arches))}); export vgg16_feature_extractor on its own")
    with fixtures_output(args.out) as output:  # claimed before LibTorch loads: a refused --out costs nothing
        threads.configure()  # LibTorch loads here, once the options and --out are checked
        from reference_py.data import resolve_data_dir
        from reference_py.pretrained import load_or_make

        weights = load_or_make(args.weights, arch=arches.pop())
        data_dir, standin = resolve_data_dir(args.data_dir)
        config = make_config(args.seed, args.strategies, args.eval_per_class, args.replay_per_class)
        export_into(output, data_dir, weights, standin, config)
    print(f"export_fixtures: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
