"""Images per second through the tutorial's train and val transforms and DataLoader (batch 4), in Python.

    python bench/data_loading.py --data-dir DIR [--passes 3] [--workers 0]

The twin of bench/data_loading.rb. Uses the reference's own data code (reference_py/data.py: its
transforms, RGB loader, torchvision's ImageFolder and a DataLoader with num_workers=--workers), or
torchvision's directly if that cannot be imported. One untimed pass per split warms the file cache, then
every timed pass decodes, transforms and batches every image once (with workers, a pass includes
starting them: PyTorch starts a DataLoader's workers afresh every pass). Prints one JSON object.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for reference_py

from reference_py import runtime_info, threads  # noqa: E402

SPLITS = ("train", "val")
BATCH_SIZE = 4


def loaders(data_dir, workers):
    """(source, {split: DataLoader}) from the reference's data code, or torchvision's as a fallback."""
    from torchvision import datasets
    try:
        from reference_py import data
        source = "reference_py/data.py"
        transforms, loader = data.data_transforms, data.rgb_loader

        def make(dataset, seed):
            return data.make_dataloader(dataset, BATCH_SIZE, seed, workers)
    except ImportError:
        import torch
        from torchvision import transforms as T
        source = "torchvision transforms + ImageFolder + DataLoader (reference_py/data.py not importable)"
        normalize = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        transforms = {
            "train": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), normalize]),
            "val": T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize]),
        }
        loader = datasets.folder.default_loader

        def make(dataset, seed):
            return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers)
    return source, {split: make(datasets.ImageFolder(Path(data_dir) / split, transforms[split], loader=loader), k)
                    for k, split in enumerate(SPLITS)}


def images_per_second(loader, passes):
    rates = []
    for timed in [False] + [True] * passes:
        start, count = time.perf_counter(), 0
        for inputs, _labels in loader:
            count += inputs.shape[0]
        if timed:
            rates.append(count / (time.perf_counter() - start))
    return {"images": count, "images_per_s": rates}


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="a folder with train/ and val/ class folders")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over each split")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes (num_workers; default 0: load in this process)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.workers < 0:
        get_args_parser().error("--workers: expected 0 or more worker processes")
    count = threads.configure()
    source, dataloaders = loaders(args.data_dir, args.workers)
    splits = {split: images_per_second(dataloaders[split], args.passes) for split in SPLITS}
    json.dump({"side": "python", "source": source, "runtime": runtime_info.describe(count), "workers": args.workers,
               "splits": splits}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
