"""What a data dir must be, checked without LibTorch: hymenoptera_data's layout (train/ and val/, one folder of
images per class, the same classes in both) and the files torchvision's ImageFolder would take from it.

No torch and no torchvision here, so that the trainers refuse a data dir before LibTorch loads (a second or
two of a run that only says the data dir is wrong); reference_py/data.py loads the images themselves.
"""

import os
import stat
from pathlib import Path

from reference_py.errors import UserError, display

SPLITS = ("train", "val")
LAYOUT_HINT = ("a data dir holds train/ and val/, each with one folder of images per class "
               "(hymenoptera_data: train/ants, train/bees, val/ants, val/bees)")
# torchvision 0.14's datasets.folder.IMG_EXTENSIONS (torchvision-ruby 0.3's ImageFolder::IMG_EXTENSIONS too),
# written out as importing torchvision loads LibTorch; reference_py/tests/test_data_layout.py and
# parity/test_image_rule.py keep it equal to both.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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
