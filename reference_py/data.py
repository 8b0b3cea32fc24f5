"""The tutorial's data: ImageFolder over train/ and val/, its transforms, DataLoaders of 4.

A data dir is hymenoptera_data's layout: train/{ants,bees}/*.jpg and val/{ants,bees}/*.jpg. Without
--data-dir the generated stand-in (reference_py/standin_data.py) is used, generated when missing. The layout
and the files ImageFolder takes are checked in reference_py/data_layout.py, without LibTorch.
"""

import hashlib
import sys
import warnings
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler
from torchvision import datasets, transforms

from reference_py import standin_data
from reference_py.checksums import file_sha256
from reference_py.data_layout import SPLITS, check_layout, class_list, image_files, split_images  # noqa: F401
from reference_py.errors import UserError, display

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

data_transforms = {
    "train": transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ]),
    "val": transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ]),
}


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # PIL's modes of more than 8 bits per sample
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDE_MESSAGE = ("more than 8 bits per sample (e.g. a 16-bit PNG); PIL and libvips decode such images differently "
                "(PIL clips, libvips scales), so both sides refuse it: convert it to 8 bits per sample")


def png_bit_depth(path):
    """A PNG's bits per sample (its IHDR's bit depth; PIL opens a 16-bit RGB PNG as 8-bit "RGB"), else None."""
    with open(path, "rb") as stream:
        head = stream.read(25)
    return head[24] if len(head) == 25 and head.startswith(PNG_SIGNATURE) else None


def rgb_loader(path):
    """Decode an image completely and convert it to RGB (grayscale, CMYK and palette images too).

    Refused: what PIL cannot decode, more than 2 * Image.MAX_IMAGE_PIXELS pixels (PIL's decompression-bomb
    error; above MAX_IMAGE_PIXELS PIL warns, in one line here), and more than 8 bits per sample (WIDE_MESSAGE)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.mode in WIDE_MODES or png_bit_depth(path) == 16:
                    raise UserError(f"{display(path)}: {WIDE_MESSAGE}")
                image.load()
                rgb = image.convert("RGB")
        for warning in caught:
            print(f"warning: {display(path)}: {warning.message}", file=sys.stderr)
        return rgb
    except FileNotFoundError:
        raise UserError(f"{display(path)}: image not found; check the path") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"{display(path)}: not a readable image ({error}); replace or delete the file") from None


def describe(data_dir, standin, dataset_sizes, class_names):
    """The trainers' `data:` line, after `data: `."""
    kind = "generated stand-in, NOT the real hymenoptera_data" if standin else "images"
    return (f"{data_dir} ({kind}; {dataset_sizes['train']} train, {dataset_sizes['val']} val; "
            f"classes {class_list(class_names)})")


def check_images(data_dir):
    """Decode every image once, so that a corrupt file stops us before training, not in the middle."""
    for split in SPLITS:
        for path in split_images(Path(data_dir) / split):
            rgb_loader(path)


def resolve_data_dir(data_dir=None):
    """(data dir, whether it is the generated stand-in); no --data-dir means the stand-in."""
    if data_dir is None:
        return standin_data.ensure_standin(), True
    marker = standin_data.read_marker(data_dir)
    return Path(data_dir), isinstance(marker, dict) and marker.get("standin") is True


def image_datasets(data_dir):
    check_layout(data_dir)
    check_images(data_dir)
    return {split: datasets.ImageFolder(Path(data_dir) / split, data_transforms[split], loader=rgb_loader)
            for split in SPLITS}


class RecordingSampler(RandomSampler):
    """The RandomSampler that DataLoader(shuffle=True, generator=...) builds, remembering each epoch's order."""

    def __init__(self, data_source, generator):
        super().__init__(data_source, generator=generator)
        self.orders = []

    def __iter__(self):
        order = [int(index) for index in super().__iter__()]
        self.orders.append(order)
        return iter(order)


def make_dataloader(dataset, batch_size, seed, workers=0):
    sampler = RecordingSampler(dataset, torch.Generator().manual_seed(seed))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)


def load_data(data_dir, batch_size=4, seed=0, workers=0):
    """The tutorial's image_datasets, dataloaders (shuffled, seeded, loading with `workers` processes),
    dataset_sizes and class_names."""
    image_sets = image_datasets(data_dir)
    dataloaders = {split: make_dataloader(image_sets[split], batch_size, seed + k, workers)
                   for k, split in enumerate(SPLITS)}
    dataset_sizes = {split: len(image_sets[split]) for split in SPLITS}
    return image_sets, dataloaders, dataset_sizes, image_sets["train"].classes


def fingerprint(data_dir):
    """sha256 over every image's relative path and content: changes when any image does."""
    digest = hashlib.sha256()
    for split in SPLITS:
        for path in split_images(Path(data_dir) / split):
            digest.update(f"{path.relative_to(data_dir).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()
