"""The tutorial's data: ImageFolder over train/ and val/, its transforms, DataLoaders of 4.

A data dir is hymenoptera_data's layout: train/{ants,bees}/*.jpg and val/{ants,bees}/*.jpg. Without
--data-dir the generated stand-in (reference_py/standin_data.py) is used, generated when missing.
"""

import hashlib
import os
import stat
import sys
import warnings
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

from reference_py import standin_data
from reference_py.errors import UserError, display
from reference_py.checksums import file_sha256

SPLITS = ("train", "val")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
LAYOUT_HINT = ("a data dir holds train/ and val/, each with one folder of images per class "
               "(hymenoptera_data: train/ants, train/bees, val/ants, val/bees)")

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


def tree_entries(folder):
    """Every entry below `folder` (sorted, depth first), refusing what would make the two sides see different
    data: a name that is not UTF-8, a symbolic link to a folder (it may loop), a link to nothing."""
    for entry in sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name)):
        path = Path(entry.path)
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"{display(path)}: the name is not valid UTF-8; rename it "
                            f"(the two sides would sort and show it differently)") from None
        if entry.is_symlink():
            if not path.exists():
                raise UserError(f"{display(path)} is a symbolic link to nothing ({display(os.readlink(path))}); "
                                f"remove it or make it point to an image")
            if path.is_dir():
                raise UserError(f"{display(path)} is a symbolic link to a folder; the data dir's folders must be "
                                f"real folders (a link can loop): replace it with a copy of the folder")
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from tree_entries(path)


# what os.stat says a path is, for the files that are not images (a link is followed)
SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def refuse_special_file(path):
    """Refuses a path ImageFolder would take (by its name) that is not a regular file: opening a named pipe waits
    for a writer for ever, a socket cannot be opened, a device is read as if it were the image."""
    mode = os.stat(path).st_mode
    kind = next((name for test, name in SPECIAL_FILES if test(mode)), None)
    if kind is None:
        return
    if path.is_symlink():
        kind = f"a symbolic link to {kind} ({display(os.readlink(path))})"
    raise UserError(f"{display(path)} is {kind}, not an image file; ImageFolder takes every name with "
                    f"an image extension, and reading this one would hang or fail: remove it or rename it")


def image_files(folder):
    """The files ImageFolder takes from a class folder, in its order: as torchvision's make_dataset, every entry below
    the folder (hidden ones and those of nested and hidden folders too) that is not a folder and whose name ends in
    an image extension, folder by folder (sorted by path), each folder's sorted by name. One that is not a regular
    file, nor a link to one, is refused (refuse_special_file)."""
    paths = sorted((p for p in tree_entries(folder) if not p.is_dir() and p.name.lower().endswith(IMG_EXTENSIONS)),
                   key=lambda p: (str(p.parent), p.name))
    for path in paths:
        refuse_special_file(path)
    return paths


def split_images(folder):
    """The images ImageFolder takes from train/ or val/: each class folder's image_files, classes sorted."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    return [path for name in classes for path in image_files(folder / name)]


def check_layout(data_dir):
    """The class names, once train/ and val/ each hold the same class folders, none of them empty."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        problem = "is not a folder" if data_dir.exists() else "not found"
        raise UserError(f"data dir {data_dir} {problem}; pass --data-dir a folder in hymenoptera_data's layout "
                        f"(python reference_py/download.py fetches it), or leave --data-dir out to use the stand-in")
    class_names = {}
    for split in SPLITS:
        folder = data_dir / split
        if not folder.is_dir():
            raise UserError(f"{folder} not found: {LAYOUT_HINT}")
        class_names[split] = sorted(d.name for d in tree_entries(folder) if d.parent == folder and d.is_dir())
        if not class_names[split]:
            raise UserError(f"{folder} has no class folders: {LAYOUT_HINT}")
        for name in class_names[split]:
            if not image_files(folder / name):
                raise UserError(f"{folder / name} has no images ({' '.join(IMG_EXTENSIONS)}); "
                                f"add images to it or remove the folder")
    if class_names["train"] != class_names["val"]:
        raise UserError(f"{data_dir}: train/ has the classes {class_list(class_names['train'])} but val/ has "
                        f"{class_list(class_names['val'])}; give both the same class folders")
    if len(class_names["train"]) < 2:
        raise UserError(f"{data_dir}: only one class ({class_names['train'][0]}); a classifier needs two or more")
    return class_names["train"]


def class_list(names):
    """Class names as the messages of both sides show them: ants, bees."""
    return ", ".join(names)


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
