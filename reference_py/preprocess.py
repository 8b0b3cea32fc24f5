"""Each image through each transform, for the parity suite to compare with the Ruby port's.

    python reference_py/preprocess.py SPEC.json OUT_STEM

SPEC.json: {"images": [{"path": "...", "crop": [i, j, h, w], "seed": 0, "outputs": [...]}, ...]}.
Writes one bundle OUT_STEM.json/.bin with, for image k, k/NAME for each name of "outputs" (default:
all of OUTPUTS, in that order). The transforms alone, each on the decoded image, as uint8 [H, W, 3]
(np.asarray of the PIL image): k/decoded (the RGB loader's image), k/resize (Resize(256)),
k/center_crop (CenterCrop(224)), k/resized_crop (RandomResizedCrop's work with the given crop),
k/hflip; then as float32 [3, H, W]: k/to_tensor and k/normalize (of the image's central PATCH x PATCH:
ToTensor and Normalize work pixel by pixel, and the pipelines hold them at full size), k/val (the whole
val pipeline) and k/train (the whole train pipeline, its crop and flip drawn after torch.manual_seed(seed)).
"""

import json
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what parsing the options needs (bin/preprocess's order): LibTorch, torchvision and the modules that load
# them come once they parse, imported by the functions below that use them.
from reference_py import output_claim, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import UserError, read_json, run_cli

CROP_SIZE = [224, 224]
PATCH = 32
OUTPUTS = ["decoded", "resize", "center_crop", "resized_crop", "hflip", "to_tensor", "normalize", "val", "train"]
SPEC_FORMAT = ('a spec is {"images": [{"path": "...", "crop": [i, j, h, w], "seed": 0, '
               f'"outputs": [some of {", ".join(OUTPUTS)}]}}, ...]}}')


def pixels(image):
    """A PIL image as a uint8 tensor [H, W, C]: np.asarray's layout."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(image, dtype=np.uint8))


def train_pipeline(image, seed):
    import torch

    from reference_py.data import data_transforms

    torch.manual_seed(seed)
    return data_transforms["train"](image)


def preprocess_image(image, crop, seed, outputs=OUTPUTS):
    """Output name -> tensor for one RGB PIL image (only the requested outputs are computed)."""
    from torchvision.transforms import functional as F

    from reference_py.data import MEAN, STD, data_transforms

    i, j, h, w = crop
    steps = {
        "decoded": lambda: pixels(image),
        "resize": lambda: pixels(F.resize(image, 256)),
        "center_crop": lambda: pixels(F.center_crop(image, 224)),
        "resized_crop": lambda: pixels(F.resized_crop(image, i, j, h, w, CROP_SIZE)),
        "hflip": lambda: pixels(F.hflip(image)),
        "to_tensor": lambda: F.to_tensor(F.center_crop(image, PATCH)),
        "normalize": lambda: F.normalize(F.to_tensor(F.center_crop(image, PATCH)), MEAN, STD),
        "val": lambda: data_transforms["val"](image),
        "train": lambda: train_pipeline(image, seed),
    }
    return {name: steps[name]() for name in outputs}


def valid_entry(entry):
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        return False
    crop, seed, outputs = entry.get("crop"), entry.get("seed", 0), entry.get("outputs", OUTPUTS)
    return (isinstance(crop, list) and len(crop) == 4 and all(type(v) is int for v in crop) and crop[2] >= 1
            and crop[3] >= 1 and type(seed) is int and isinstance(outputs, list) and len(outputs) > 0
            and all(name in OUTPUTS for name in outputs))


def read_spec(path):
    """The list of images of SPEC.json, each checked: a path, a crop of four whole numbers, a seed, outputs."""
    spec = read_json(path, SPEC_FORMAT)
    images = spec.get("images") if isinstance(spec, dict) else None
    if not isinstance(images, list) or not images:
        raise UserError(f"spec {path} has no \"images\" list; {SPEC_FORMAT}")
    for k, entry in enumerate(images):
        if not valid_entry(entry):
            raise UserError(f"spec {path}: images[{k}] must be {{\"path\": str, \"crop\": [i, j, h, w] "
                            f"(whole numbers, h and w at least 1), \"seed\": int, \"outputs\": [some of "
                            f"{', '.join(OUTPUTS)}]}} (seed and outputs optional), got {json.dumps(entry)}")
    return images


def written_bundle(stem):
    """Whether STEM.json is a tensor bundle's index (so STEM.json and STEM.bin are this tool's to replace)."""
    from reference_py.tensor_io import FORMAT, bundle_paths

    index_path, _ = bundle_paths(stem)
    try:
        return json.loads(index_path.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def bundle_output(stem, tool, option):
    """OUT_STEM.json and OUT_STEM.bin, claimed: new, or a bundle; locked."""
    from reference_py.tensor_io import bundle_paths

    index_path, blob_path = bundle_paths(stem)
    return output_claim.OutputFile(index_path, tool, option, lambda _: written_bundle(stem), companions=[blob_path])


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", metavar="SPEC.json", help="the images and what to write of each")
    parser.add_argument("out_stem", metavar="OUT_STEM", help="the bundle to write (OUT_STEM.json and OUT_STEM.bin)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    out_stem = output_claim.check_path_option(args.out_stem, "OUT_STEM")
    with bundle_output(out_stem, "preprocess", "OUT_STEM"):  # claimed, and the spec read, before LibTorch loads
        images = read_spec(args.spec)
        threads.configure()
        write_outputs(images, out_stem)


def write_outputs(images, out_stem):
    from reference_py.data import rgb_loader
    from reference_py.tensor_io import write_bundle

    tensors = {}
    for k, entry in enumerate(images):
        image = rgb_loader(entry["path"])
        outputs = preprocess_image(image, entry["crop"], entry.get("seed", 0), entry.get("outputs", OUTPUTS))
        for name, tensor in outputs.items():
            tensors[f"{k}/{name}"] = tensor
    write_bundle(out_stem, tensors, meta={"images": images})


if __name__ == "__main__":
    run_cli(main)
