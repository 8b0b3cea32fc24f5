"""Each image through each transform, for the parity suite to compare with the Ruby port's.

    python reference_py/preprocess.py SPEC.json OUT_STEM

SPEC.json: {"images": [{"path": "...", "crop": [i, j, h, w], "flip": false}, ...]}. Writes one bundle
OUT_STEM.json/.bin with, for image k: k/to_tensor, k/resize (Resize(256)), k/center_crop
(CenterCrop(224)), k/normalize (of k/to_tensor), k/val (the whole val pipeline), k/resized_crop
(RandomResizedCrop's work with the given crop), k/hflip (always flipped), and k/train (the train
pipeline with the given crop and, if "flip", the flip).
"""

import argparse
import json
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from torchvision.transforms import functional as F

from reference_py import threads
from reference_py.data import MEAN, STD, data_transforms, rgb_loader
from reference_py.errors import UserError, read_json, run_cli
from reference_py.tensor_io import write_bundle

CROP_SIZE = [224, 224]
SPEC_FORMAT = 'a spec is {"images": [{"path": "...", "crop": [i, j, h, w], "flip": false}, ...]}'


def preprocess_image(image, crop, flip):
    """Transform name -> tensor for one RGB PIL image."""
    i, j, h, w = crop
    to_tensor = F.to_tensor(image)
    train = F.resized_crop(image, i, j, h, w, CROP_SIZE)
    if flip:
        train = F.hflip(train)
    return {
        "to_tensor": to_tensor,
        "resize": F.to_tensor(F.resize(image, 256)),
        "center_crop": F.to_tensor(F.center_crop(image, 224)),
        "normalize": F.normalize(to_tensor, MEAN, STD),
        "val": data_transforms["val"](image),
        "resized_crop": F.to_tensor(F.resized_crop(image, i, j, h, w, CROP_SIZE)),
        "hflip": F.to_tensor(F.hflip(image)),
        "train": F.normalize(F.to_tensor(train), MEAN, STD),
    }


def read_spec(path):
    """The list of images of SPEC.json, each checked: a path, a crop of four whole numbers, a flip flag."""
    spec = read_json(path, SPEC_FORMAT)
    images = spec.get("images") if isinstance(spec, dict) else None
    if not isinstance(images, list) or not images:
        raise UserError(f"spec {path} has no \"images\" list; {SPEC_FORMAT}")
    for k, entry in enumerate(images):
        crop = entry.get("crop") if isinstance(entry, dict) else None
        if (not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(crop, list)
                or len(crop) != 4 or not all(isinstance(v, int) for v in crop) or crop[2] < 1 or crop[3] < 1
                or not isinstance(entry.get("flip", False), bool)):
            raise UserError(f"spec {path}: images[{k}] must be {{\"path\": str, \"crop\": [i, j, h, w] "
                            f"(whole numbers, h and w at least 1), \"flip\": bool}}, got {json.dumps(entry)}")
    return images


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="SPEC.json")
    parser.add_argument("out_stem", help="the bundle to write (OUT_STEM.json and OUT_STEM.bin)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    threads.configure()
    images = read_spec(args.spec)
    tensors = {}
    for k, entry in enumerate(images):
        image = rgb_loader(entry["path"])
        for name, tensor in preprocess_image(image, entry["crop"], entry.get("flip", False)).items():
            tensors[f"{k}/{name}"] = tensor
    write_bundle(args.out_stem, tensors, meta={"images": images})


if __name__ == "__main__":
    run_cli(main)
