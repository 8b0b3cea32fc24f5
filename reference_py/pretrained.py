"""Write net.pth: torchvision's ImageNet ResNet-18 as a plain dict of tensors, or a seeded stand-in.

Sources, in order: --weights FILE (a checkpoint you downloaded), the torch hub cache
(TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth), else a deterministic stand-in that is NOT
ImageNet-trained. net.pth.json beside it records which one it is: "imagenet" only for a file whose
sha256 starts with the digits in torchvision's file name (torch.hub's check), "user-supplied" for any
other checkpoint, "stand-in" for the seeded one. --out is never a file pretrained.py did not write.

    python reference_py/pretrained.py [--out net.pth] [--weights FILE] [--seed 0]
"""

import json
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what checking the options and claiming --out need: torch and torchvision are imported by the functions that
# use them, once main has claimed --out and configured LibTorch's threads, so a bad option or --out is refused at once.
from reference_py import atomic, output_claim, recipe, threads
from reference_py.checksums import file_sha256
from reference_py.arguments import ArgumentParser
from reference_py.errors import check_seed, run_cli
from reference_py.weights import (IMAGENET_URLS, announce, hub_file, hub_sha256_prefix, load_weights, provenance_path,
                                  read_state_dict, save_state_dict, validate, written_by_pretrained)

DEFAULT_PATHS = {arch: Path(path) for arch, path in recipe.WEIGHTS.items()}
IMAGENET_URL = IMAGENET_URLS["resnet18"]
HUB_FILE = hub_file()  # resnet18-f37072fd.pth
HUB_SHA256_PREFIX = hub_sha256_prefix()  # torch.hub checks the file's sha256 against it
DEFAULT_PATH = DEFAULT_PATHS["resnet18"]
LABELS = {"resnet18": "ResNet-18", "vgg16": "VGG-16"}
CALIBRATION_BATCHES = 2
CALIBRATION_SHAPE = (8, 3, 112, 112)


def hub_checkpoint(arch="resnet18"):
    """Where torchvision keeps the downloaded checkpoint (honours TORCH_HOME)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / hub_file(arch)


def calibrate_batch_norm(model, generator):
    """Give the BatchNorm layers running statistics of real activations (of seeded noise images)."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:  # VGG-16: nothing to calibrate
        return
    for norm in norms:
        norm.momentum = None  # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(CALIBRATION_BATCHES):
            model(torch.randn(CALIBRATION_SHAPE, generator=generator))
    for norm in norms:
        norm.momentum = 0.1


def standin_state_dict(seed, arch="resnet18"):
    """A deterministic `arch` state dict: torchvision's initialisation, calibrated BatchNorm statistics."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    calibrate_batch_norm(model, torch.Generator().manual_seed(seed))
    return model.state_dict()


def plain_state_dict(state_dict, arch="resnet18"):
    """The full `arch` state dict, num_batches_tracked filled in where a checkpoint lacks it."""
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    model.load_state_dict(state_dict)
    return model.state_dict()


def provenance_of(sha256, arch="resnet18"):
    """"imagenet" only for torchvision's file (its sha256 starts with the digits in its name), else "user-supplied"."""
    return "imagenet" if sha256.startswith(hub_sha256_prefix(arch)) else "user-supplied"


def read_checkpoint(path, fix, arch="resnet18"):
    """A checkpoint's full state dict (plain_state_dict), its provenance, source and sha256."""
    state_dict = read_state_dict(path, fix)
    validate(state_dict, path, fix, arch)
    sha256 = file_sha256(path)
    provenance = provenance_of(sha256, arch)
    if provenance != "imagenet":
        print(f"pretrained: {path} (sha256 {sha256[:12]}) is not torchvision's {hub_file(arch)} (whose sha256 starts "
              f"with {hub_sha256_prefix(arch)}); labelled {provenance}", file=sys.stderr)
    return plain_state_dict(state_dict, arch), provenance, str(path), sha256


def choose_source(weights_file, seed, arch="resnet18"):
    """(full state dict, provenance, source, source sha256) from the first source that exists."""
    url = IMAGENET_URLS[arch]
    if weights_file is not None:
        return read_checkpoint(Path(weights_file), f"pass --weights the {LABELS[arch]} checkpoint from {url}", arch)
    hub = hub_checkpoint(arch)
    if hub.is_file():
        return read_checkpoint(hub, f"delete it, or pass --weights the {LABELS[arch]} checkpoint from {url}", arch)
    print(f"pretrained: STAND-IN weights (seed {seed}), NOT ImageNet: no --weights file and no {hub}; "
          f"for the real ones download {url} and pass --weights FILE", file=sys.stderr)
    return standin_state_dict(seed, arch), "stand-in", f"seed {seed}", None


def write_net(out, state_dict, provenance, source, source_sha256=None, arch="resnet18"):
    """net.pth (a full state dict: the stand-in's, or a checkpoint's made full by read_checkpoint) and net.pth.json."""
    import torch

    save_state_dict(out, state_dict)
    record = {
        "provenance": provenance,
        "source": source,
        "source_sha256": source_sha256,
        "sha256": file_sha256(out),
        "torch_version": torch.__version__,
    }
    atomic.write_text(provenance_path(out), json.dumps(record, indent=1) + "\n")
    return record


def output_file(out):
    """--out (and its .json), claimed: new, or pretrained.py's own unchanged output; locked."""
    return output_claim.OutputFile(out, "pretrained", "--out", written_by_pretrained, companions=[provenance_path(out)])


def make_net(out, weights_file=None, seed=0, arch="resnet18"):
    with output_file(out):
        return write_from_source(out, weights_file, seed, arch)


def write_from_source(out, weights_file=None, seed=0, arch="resnet18"):
    """make_net's work once --out is claimed: the first source that exists, written as net.pth and net.pth.json."""
    state_dict, provenance, source, source_sha256 = choose_source(weights_file, seed, arch)
    record = write_net(out, state_dict, provenance, source, source_sha256, arch)
    print(f"pretrained: wrote {out}: {provenance} weights from {source} (sha256 {record['sha256'][:12]})",
          file=sys.stderr)
    return record


def ensure_net(path, seed=0, arch="resnet18"):
    """Create net.pth with make_net's logic when it is missing (used by the steps that need weights)."""
    path = Path(path)
    if not path.exists():
        make_net(path, seed=seed, arch=arch)
    return path


def load_or_make(weights_arg, default=DEFAULT_PATH, arch="resnet18"):
    """The checked weights: --weights if given (it must exist), else `default`, made when missing. Announced."""
    path = Path(weights_arg) if weights_arg is not None else ensure_net(default, arch=arch)
    weights = load_weights(path, arch)
    announce(weights)
    return weights


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="net.pth", help="where to write the weights (default: ./net.pth)")
    parser.add_argument("--weights", help="a ResNet-18 ImageNet checkpoint you downloaded (resnet18-f37072fd.pth)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stand-in weights")
    parser.add_argument("--arch", choices=list(IMAGENET_URLS), default="resnet18",
                        help="the backbone: " + " or ".join(
                            f"{arch} ({', '.join(s for s, row in recipe.STRATEGY_TABLE.items() if row.architecture == arch)})"
                            for arch in IMAGENET_URLS))
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    out = output_claim.check_path_option(args.out, "--out")
    check_seed(args.seed)
    with output_file(out):  # claimed before LibTorch loads: an --out we may not replace costs nothing
        threads.configure()
        write_from_source(out, args.weights, args.seed, args.arch)


if __name__ == "__main__":
    run_cli(main)
