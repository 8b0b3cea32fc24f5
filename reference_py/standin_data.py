"""A generated stand-in for hymenoptera_data: the same layout, photo-like sizes, two learnable classes.

"ants": several small dark elongated insects (three body segments, legs); "bees": fewer, larger
yellow-and-black striped bodies with pale wings. Both on textured backgrounds with the same kinds of
clutter (yellow flowers, dark pebbles, leaves), so no single colour gives the class away. A few
images per folder are grayscale ("L"), CMYK or palette ("P", as PNG): the loader must convert them.
Deterministic from a seed; STANDIN.json in the folder says what it is.

    python reference_py/standin_data.py [--out data/hymenoptera_standin] [--seed 0] [--train 48] [--val 32]
"""

import json
import math
import re
import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

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


def ellipse_points(cx, cy, rx, ry, steps=24):
    return [(cx + rx * math.cos(2 * math.pi * k / steps), cy + ry * math.sin(2 * math.pi * k / steps))
            for k in range(steps)]


def textured_background(rng, width, height):
    base = rng.uniform(50, 190, size=3)
    coarse = np.clip(128 + rng.normal(0, 28, size=(rng.integers(3, 9), rng.integers(3, 9), 3)), 0, 255)
    coarse = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, rng.uniform(4, 16), size=(height, width, 1))
    pixels = base + (np.asarray(coarse, dtype=np.float64) - 128) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGBA")


def draw_clutter(rng, canvas):
    """Flowers, pebbles and leaves, in both classes alike."""
    width, height = canvas.size
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.integers(1, 6)):
        kind = rng.choice(["flower", "pebble", "leaf"])
        radius = rng.uniform(0.03, 0.12) * min(width, height)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if kind == "flower":
            color = (int(rng.uniform(200, 255)), int(rng.uniform(170, 240)), int(rng.uniform(0, 120)), 230)
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=color)
        elif kind == "pebble":
            gray = int(rng.uniform(10, 90))
            draw.ellipse([cx - radius * 0.5, cy - radius * 0.4, cx + radius * 0.5, cy + radius * 0.4],
                         fill=(gray, gray, gray, 240))
        else:
            color = (int(rng.uniform(20, 90)), int(rng.uniform(90, 180)), int(rng.uniform(20, 80)), 200)
            draw.polygon(ellipse_points(cx, cy, radius * 1.6, radius * 0.5), fill=color)
    canvas.alpha_composite(overlay)


def ant_sprite(rng, length):
    """A dark ant along the x axis: abdomen, thorax, head, six legs, two antennae."""
    margin = length * 0.3
    sprite = Image.new("RGBA", (int(length + 2 * margin), int(length * 0.6 + 2 * margin)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    color = (int(rng.uniform(15, 90)), int(rng.uniform(5, 45)), int(rng.uniform(0, 35)), 255)
    cy = sprite.size[1] / 2
    line = max(1, int(length / 25))
    for fraction in (0.4, 0.55, 0.7):  # legs from the thorax
        x = margin + fraction * length
        for side in (-1, 1):
            draw.line([(x, cy), (x + rng.uniform(-0.15, 0.15) * length, cy + side * 0.3 * length)], fill=color,
                      width=line)
    head_x = margin + 0.85 * length
    for side in (-1, 1):
        draw.line([(head_x, cy), (head_x + 0.2 * length, cy + side * 0.18 * length)], fill=color, width=line)
    for center, rx, ry in ((0.2, 0.2, 0.13), (0.55, 0.14, 0.06), (0.85, 0.09, 0.08)):
        draw.polygon(ellipse_points(margin + center * length, cy, rx * length, ry * length), fill=color)
    return sprite


def bee_sprite(rng, length):
    """A yellow body with black stripes, a black head and two pale wings, along the x axis."""
    margin = length * 0.15
    width, height = int(length + 2 * margin), int(length * 0.8 + 2 * margin)
    sprite = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    cy = height / 2
    yellow = (int(rng.uniform(200, 255)), int(rng.uniform(150, 215)), int(rng.uniform(0, 70)))
    body = Image.new("RGB", (width, height), yellow)
    body_draw = ImageDraw.Draw(body)
    stripes = int(rng.integers(3, 5))
    for k in range(stripes):
        x = margin + length * (0.2 + 0.55 * (k + 0.5) / stripes)
        body_draw.rectangle([x - 0.045 * length, 0, x + 0.045 * length, height], fill=(20, 15, 5))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(ellipse_points(margin + 0.45 * length, cy, 0.38 * length, 0.2 * length), fill=255)
    sprite.paste(body, (0, 0), mask)
    wings = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    wing_draw = ImageDraw.Draw(wings)
    for side in (-1, 1):
        wing_draw.polygon(ellipse_points(margin + 0.45 * length, cy + side * 0.25 * length, 0.2 * length,
                                         0.1 * length), fill=(235, 240, 250, 150))
    sprite.alpha_composite(wings)
    head = ellipse_points(margin + 0.88 * length, cy, 0.11 * length, 0.12 * length)
    ImageDraw.Draw(sprite).polygon(head, fill=(15, 10, 5, 255))
    return sprite


def place(rng, canvas, sprite):
    rotated = sprite.rotate(float(rng.uniform(0, 360)), resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.uniform(-0.2, 0.9) * canvas.size[0])
    y = int(rng.uniform(-0.2, 0.9) * canvas.size[1])
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    layer.paste(rotated, (x, y), rotated)
    canvas.alpha_composite(layer)


def draw_image(rng, class_name):
    width, height = (int(v) for v in rng.integers(200, 501, size=2))
    canvas = textured_background(rng, width, height)
    draw_clutter(rng, canvas)
    side = min(width, height)
    if class_name == "ants":
        for _ in range(rng.integers(4, 11)):
            place(rng, canvas, ant_sprite(rng, rng.uniform(0.07, 0.14) * side))
    else:
        for _ in range(rng.integers(1, 4)):
            place(rng, canvas, bee_sprite(rng, rng.uniform(0.25, 0.45) * side))
    image = canvas.convert("RGB").filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(2, 8), size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def save_image(image, folder, stem, mode, quality):
    """Save in `mode`: RGB, L and CMYK as JPEG; P (palette) as PNG, JPEG cannot hold it. Returns the file."""
    if mode == "P":
        path = folder / f"{stem}.png"
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path, optimize=False)
    else:
        path = folder / f"{stem}.jpg"
        image.convert(mode).save(path, quality=quality)
    return path


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
