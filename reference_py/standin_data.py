"""A generated stand-in for hymenoptera_data: the same layout, photo-like sizes, two learnable classes.

"ants": several small dark elongated insects (three body segments, legs); "bees": fewer, larger
yellow-and-black striped bodies with pale wings. Both on textured backgrounds with the same kinds of
clutter (yellow flowers, dark pebbles, leaves), so no single colour gives the class away. A few
images per folder are grayscale ("L"), CMYK or palette ("P", as PNG): the loader must convert them.
Deterministic from a seed; STANDIN.json in the folder says what it is.

    python reference_py/standin_data.py [--out data/hymenoptera_standin] [--seed 0] [--train 48] [--val 32]
"""

import json
import re
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from reference_py import STANDIN_DIR, atomic, output_claim, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import run_cli

GENERATOR_VERSION = 1
MARKER = "STANDIN.json"
DEFAULT_DIR = STANDIN_DIR
DEFAULT_COUNTS = {"train": 48, "val": 32}
SPLITS = ("train", "val")
CLASSES = ("ants", "bees")
SPECIAL_MODES = {1: "L", 2: "CMYK", 3: "P"}  # index within a folder -> image mode; the others are RGB


def write_marker(root, seed, counts):
    marker = {
        "standin": True,
        "note": "generated stand-in images, NOT the real hymenoptera_data (reference_py/standin_data.py)",
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "counts": counts,
    }
    atomic.write_text(root / MARKER, json.dumps(marker, indent=1) + "\n")


def read_marker(root):
    """The stand-in marker of a data dir, or None when it is not a generated stand-in."""
    try:
        # bytes that are not UTF-8 pass through, as Ruby's JSON.parse takes them (data.rb's standin?)
        return json.loads((Path(root) / MARKER).read_text(errors="surrogateescape"))
    except (OSError, ValueError):  # a link loop, a folder so named, not JSON: as standin? rescues
        return None


def per_class(counts, split):
    """Images per class in `split`: counts[split] is one number for every class, or one per class name."""
    wanted = counts[split]
    if isinstance(wanted, int):
        return {class_name: wanted for class_name in CLASSES}
    if sorted(wanted) != sorted(CLASSES):
        raise ValueError(f"counts[{split!r}] names classes {sorted(wanted)}; "
                         f"give one count for each of {list(CLASSES)}")
    return {class_name: wanted[class_name] for class_name in CLASSES}


def generated_files(root):
    """The files of a set generated before output_claim.MARKER existed (its STANDIN.json and images), or None."""
    marker = read_marker(root)
    if not isinstance(marker, dict) or marker.get("standin") is not True:
        return None
    image = re.compile(rf"({'|'.join(SPLITS)})/({'|'.join(CLASSES)})/[a-z]+_\d+\.(jpg|png)")
    return {MARKER} | {name for name in output_claim.files_below(root) if image.fullmatch(name)}


def standin_output(root):
    """`root`, claimed: new, empty, or a set standin_data generated."""
    return output_claim.OutputDir(root, "standin_data", "--out", legacy=generated_files)


def generate(root, seed=0, counts=None):
    """Write the whole set into `root` (replacing it only once complete, and only if it is new or a set this
    tool generated).

    counts: images per split, each one number for every class or a {class name: number} (unequal classes)."""
    import numpy as np

    from reference_py.standin_draw import draw_image, save_image

    counts = dict(counts or DEFAULT_COUNTS)
    with standin_output(root) as output, output.write() as tmp:
        for split_index, split in enumerate(SPLITS):
            for class_index, (class_name, count) in enumerate(per_class(counts, split).items()):
                folder = tmp / split / class_name
                folder.mkdir(parents=True)
                for index in range(count):
                    rng = np.random.default_rng([seed, split_index, class_index, index])
                    image = draw_image(rng, class_name)
                    save_image(image, folder, f"{class_name[:-1]}_{index:03d}", SPECIAL_MODES.get(index, "RGB"),
                               quality=int(rng.integers(70, 96)))
        write_marker(tmp, seed, counts)
    return Path(root)


def ensure_standin(root=DEFAULT_DIR, seed=0, counts=None):
    """The stand-in set at `root`, generated when missing or made by another seed, size or generator."""
    counts = dict(counts or DEFAULT_COUNTS)
    marker = read_marker(root)
    wanted = {"seed": seed, "generator_version": GENERATOR_VERSION, "counts": counts}
    if not isinstance(marker, dict) or any(marker.get(key) != value for key, value in wanted.items()):
        print(f"standin_data: generating stand-in images (NOT the real hymenoptera_data) in {root} "
              f"(seed {seed}, generator {GENERATOR_VERSION})", file=sys.stderr)
        generate(root, seed, counts)
    return Path(root)


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_DIR), help="where to write the images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=DEFAULT_COUNTS["train"], help="training images per class")
    parser.add_argument("--val", type=int, default=DEFAULT_COUNTS["val"], help="validation images per class")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    output_claim.check_path_option(args.out, "--out")
    threads.thread_count()  # HYMENOPTERA_THREADS checked as every entry point checks it; the images need no LibTorch
    root = generate(Path(args.out), args.seed, {"train": args.train, "val": args.val})
    print(f"standin_data: wrote {root}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
