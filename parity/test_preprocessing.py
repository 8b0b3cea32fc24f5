"""Preprocessing: the tutorial's transforms in Python (PIL, torchvision 0.14) and in the port (TurboJPEG
and libvips decoding, Pillow's bilinear filter re-implemented on LibTorch), compared bit for bit.

Two sets of images go through reference_py/preprocess.py and ruby_port/bin/preprocess, all four
processes at once:
- the stand-in data set the fixtures were built from, every image (the fixtures' replay subset when
  they were built from other data): the loader, each transform alone, and both pipelines, the train
  pipeline with its crop and flip drawn from a seed;
- GEOMETRY_IMAGES random images made here with PIL from a seeded generator, in every mode the loader
  converts and every way it decodes (RGB, L, P with and without transparency, RGBA and LA as PNG,
  decoded by libvips; CMYK as JPEG, libvips too; RGB in three chroma subsamplings, one progressive,
  and L as JPEG, decoded by TurboJPEG), sides from 1 to 4,000 pixels: the loader, Resize and CenterCrop on each, RandomResizedCrop's work on
  CROPS_PER_IMAGE crop boxes each, drawn as RandomResizedCrop draws them; and EDGE_GEOMETRIES (1x1,
  2x1, 1x2, a 3000x41 strip and its transpose, 4000x400 and 400x4000; and JPEGs of 1x1, 3x2 and the
  strip, where chroma upsampling meets the edges) through everything, both pipelines too.
Tensors of the same dtype, shape and bytes (the sha256 in each side's bundle index) are identical; any
other is read back, and its difference is measured in pixel levels (1 level = 1/255; after Normalize,
times the channel's std).
"""

import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from parity.compare import Comparison, check, measure
from parity.early import RunsInFolder, started, starts_early
from parity.settings import PYTHON_PREPROCESSED, ROOT
from parity.sides import python, ruby, start_served
from parity.tolerances import PIXEL_LEVEL, PREPROCESSING
from reference_py.data import STD, image_files
from reference_py.fixtures_format import read_manifest
from reference_py.preprocess import OUTPUTS
from reference_py.tensor_io import read_bundle, read_index

IMAGENET_STD = torch.tensor(STD, dtype=torch.float64).view(3, 1, 1)  # normalised values back to pixel levels
FLOAT_OUTPUTS = ("to_tensor", "normalize", "val", "train")  # float32 [3, H, W]; the others uint8 [H, W, 3]
NORMALIZED = ("normalize", "val", "train")
RRC_SCALE, RRC_RATIO = (0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0)

GEOMETRY_SEED = 20261122
GEOMETRY_IMAGES = 126
CROPS_PER_IMAGE = 4
MAX_SIDE = 4000
MAX_ASPECT = 6.0  # keeps Resize(256)'s output within 1,536 x 256
MAX_PIXELS = 1_600_000  # 4000 x 400
# each mode's file: PNG (None) or JPEG with these save options; the PIL mode is the name's first word
MODES = {"RGB": None, "L": None, "P": None, "P+transparency": None, "RGBA": None, "LA": None,
         "CMYK": {"quality": 95},
         "RGB JPEG 4:2:0": {"quality": 90, "subsampling": "4:2:0"},
         "RGB JPEG 4:4:4": {"quality": 95, "subsampling": "4:4:4"},
         "RGB JPEG 4:2:2 progressive": {"quality": 75, "subsampling": "4:2:2", "progressive": True},
         "L JPEG": {"quality": 90}}
# through every output: the sizes at PIL's edges, the tutorial's bad-input strip, the largest sides, in
# the first seven modes; then JPEGs whose chroma blocks overhang the image
EDGE_GEOMETRIES = tuple(zip(((1, 1), (2, 1), (1, 2), (3000, 41), (41, 3000), (4000, 400), (400, 4000)), MODES)) + (
    ((1, 1), "RGB JPEG 4:2:0"), ((3, 2), "RGB JPEG 4:2:2 progressive"), ((3000, 41), "RGB JPEG 4:4:4"),
    ((41, 3000), "L JPEG"))
GEOMETRY_OUTPUTS = ["decoded", "resize", "center_crop", "resized_crop"]
# preprocess.py's and bin/preprocess's two runs each are forked by the session's server of their language, which loaded
# LibTorch and torchvision once (parity/sides.py's session_server); a server started for two runs cost what it saved them


@dataclass
class Bundles:
    """One spec's two bundles; the tensors are read back only where the bytes differ."""
    images: list
    stems: dict
    entries: dict = field(default_factory=dict)
    _tensors: dict = field(default_factory=dict)

    def __post_init__(self):
        self.entries = {side: {e["name"]: e for e in read_index(stem)["tensors"]} for side, stem in self.stems.items()}

    def tensor(self, side, key):
        if side not in self._tensors:
            self._tensors[side] = read_bundle(self.stems[side], mapped=True)
        return self._tensors[side][key]

    def compare(self, key, output, quantity, where):
        result = Comparison(quantity=quantity, where=where, tolerance=PREPROCESSING)
        python_entry, ruby_entry = self.entries["python"].get(key), self.entries["ruby"].get(key)
        if python_entry is None or ruby_entry is None:
            result.problem = f"{key} missing on the {'ruby' if ruby_entry is None else 'python'} side"
            return result
        if (ruby_entry["dtype"], ruby_entry["shape"]) != (python_entry["dtype"], python_entry["shape"]):
            result.problem = (f"{ruby_entry['dtype']} {tuple(ruby_entry['shape'])} in ruby, "
                              f"{python_entry['dtype']} {tuple(python_entry['shape'])} in python")
            return result
        result.numel = math.prod(python_entry["shape"])
        if ruby_entry["sha256"] == python_entry["sha256"]:
            return result  # the same bytes
        ruby_tensor, python_tensor = self.tensor("ruby", key), self.tensor("python", key)
        result = measure(ruby_tensor, python_tensor, quantity=quantity, tolerance=PREPROCESSING, **where)
        levels = level_differences(ruby_tensor, python_tensor, output)
        result.notes.append(f"greatest difference {float(levels.max()):.4g} pixel levels, mean {float(levels.mean()):.4g}")
        return result


def level_differences(ruby_tensor, python_tensor, output):
    difference = (ruby_tensor.double() - python_tensor.double()).abs()
    if output not in FLOAT_OUTPUTS:
        return difference  # uint8: levels already
    if output in NORMALIZED:
        difference = difference * IMAGENET_STD
    return difference / PIXEL_LEVEL


def crop_box(height, width, seed):
    """(i, j, h, w) as RandomResizedCrop(224) draws it for an image of this size after manual_seed(seed)."""
    torch.manual_seed(seed)
    image = torch.empty(1, 1, 1).expand(1, height, width)  # get_params reads only the size
    return list(transforms.RandomResizedCrop.get_params(image, list(RRC_SCALE), list(RRC_RATIO)))


def standin_spec(fixtures_dir, outputs=None):
    """Every stand-in image's entry; with `outputs`, only those are made (a session that collected only some of
    test_every_stand_in_image_is_bit_identical's outputs, as the fault-injection child for normalize)."""
    manifest = read_manifest(fixtures_dir)
    data_dir = ROOT / manifest["data"]["dir"]
    if manifest["data"].get("standin"):
        paths = [path for split in ("train", "val") for path in image_files(data_dir / split)]
    else:  # real photos: the replay subset keeps this test short
        paths = [data_dir / p for p in manifest["replay_subset"]["val"] + manifest["replay_subset"]["train"]]
    images = []
    for k, path in enumerate(paths):
        with Image.open(path) as image:
            width, height = image.size
        images.append({"path": str(path), "crop": crop_box(height, width, k), "seed": k,
                       **({"outputs": list(outputs)} if outputs else {})})
    return images


def random_image(rng, width, height, mode):
    """A seeded noise image of the given size and PIL mode (P: a random palette; with transparency, one index)."""
    def noise(*bands):
        return rng.integers(0, 256, size=(height, width, *bands), dtype=np.uint8)

    if mode.startswith("P"):
        image = Image.frombytes("P", (width, height), noise().tobytes())
        image.putpalette(rng.integers(0, 256, size=768, dtype=np.uint8).tobytes())
        if mode == "P+transparency":
            image.info["transparency"] = int(rng.integers(0, 256))
        return image
    if mode == "L":
        return Image.fromarray(noise(), mode="L")
    bands = {"RGB": 3, "RGBA": 4, "LA": 2, "CMYK": 4}[mode]
    return Image.frombytes(mode, (width, height), noise(bands).tobytes())


def random_size(rng):
    """Long side log-uniform in [1, MAX_SIDE], aspect log-uniform in [1, MAX_ASPECT], either orientation."""
    while True:
        long_side = int(round(math.exp(rng.uniform(0.0, math.log(MAX_SIDE)))))
        short_side = max(1, int(round(long_side / math.exp(rng.uniform(0.0, math.log(MAX_ASPECT))))))
        if long_side * short_side <= MAX_PIXELS:
            return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def geometry_spec(folder):
    """The random images, written into folder, and their spec entries (one per crop box)."""
    rng = np.random.default_rng(GEOMETRY_SEED)
    modes = list(MODES)
    sizes = [(random_size(rng), modes[k % len(modes)], False) for k in range(GEOMETRY_IMAGES)]
    sizes += [(size, mode, True) for size, mode in EDGE_GEOMETRIES]
    images = []
    for k, ((width, height), mode, edge) in enumerate(sizes):
        jpeg = MODES[mode]
        name = re.sub(r"[^A-Za-z0-9]+", "_", mode)
        path = folder / f"geometry_{k:03d}_{width}x{height}_{name}.{'jpg' if jpeg else 'png'}"
        image = random_image(rng, width, height, mode.split()[0])
        if jpeg:
            image.save(path, **jpeg)
        else:
            image.save(path, compress_level=1, **({"transparency": image.info["transparency"]} if "transparency" in image.info else {}))
        for c in range(CROPS_PER_IMAGE):
            seed = GEOMETRY_SEED + CROPS_PER_IMAGE * k + c
            outputs = (OUTPUTS if edge else GEOMETRY_OUTPUTS) if c == 0 else ["resized_crop"]
            images.append({"path": str(path), "crop": crop_box(height, width, seed), "seed": seed,
                           "outputs": list(outputs), "geometry": f"{width}x{height} {mode}"})
    return images


# the image sets each test reads
SETS = {"test_every_stand_in_image_is_bit_identical": ("standin",),
        "test_random_geometries_are_bit_identical": ("geometries",),
        "test_the_report_counts_what_was_compared": ("standin", "geometries")}


@starts_early("preprocessed")
def start_preprocessing(session, background):
    """The collected tests' sets through both sides, all four processes at once."""
    from parity.conftest import fixtures_ready

    selected = {name for item in session.items for name in SETS.get(item.originalname, ())}
    # the stand-in outputs the collected tests compare: every one unless only some outputs' rows were collected
    standin_rows = [item for item in session.items if "standin" in SETS.get(item.originalname, ())]
    outputs = None
    if all(item.originalname == "test_every_stand_in_image_is_bit_identical" for item in standin_rows):
        outputs = [o for o in OUTPUTS if any(item.callspec.params["output"] == o for item in standin_rows)]
        outputs = None if len(outputs) == len(OUTPUTS) else outputs
    specs = {"standin": standin_spec(fixtures_ready(), outputs)} if "standin" in selected else {}
    folder = Path(tempfile.mkdtemp(prefix="parity-preprocess-"))  # this session's own: sessions may run at once
    if "geometries" in selected:
        specs["geometries"] = geometry_spec(folder)
    commands, stems = [], {}
    for name, images in specs.items():
        spec = write_spec(folder, name, images)
        stems[name] = {side: folder / f"{name}_{side}" for side in ("python", "ruby")}
        if name == "standin" and PYTHON_PREPROCESSED is not None:
            stems[name]["python"] = given_python_standin(images)
        else:
            commands.append(python("preprocess.py", spec, stems[name]["python"]))
        commands.append(ruby("preprocess", spec, stems[name]["ruby"]))
    return Preprocessing(folder, start_served(*commands, background=background), specs, stems)


def write_spec(folder, name, images):
    spec = folder / f"{name}.json"
    spec.write_text(json.dumps({"images": images}))
    return spec


def standin_outputs(test_ids):
    """The stand-in outputs that a session of `test_ids` (pytest node ids) compares, when they are rows of
    test_every_stand_in_image_is_bit_identical alone; else None."""
    rows = [re.fullmatch(r"parity/test_preprocessing\.py::test_every_stand_in_image_is_bit_identical\[(\w+)\]", test_id)
            for test_id in test_ids]
    return None if not rows or not all(rows) else [o for o in OUTPUTS if o in {row[1] for row in rows}]


def python_standin(folder, outputs):
    """reference_py/preprocess.py's command for the stand-in images' `outputs`, written into `folder` (standin.json,
    standin_python), which a child session of the fault-injection tests (the port broken, Python as it is) takes as
    PARITY_PYTHON_PREPROCESSED: each such child started a Python server of its own for that one run (4.3 CPU-s)."""
    from parity.conftest import fixtures_ready

    spec = write_spec(folder, "standin", standin_spec(fixtures_ready(), None if len(outputs) == len(OUTPUTS) else outputs))
    return python("preprocess.py", spec, folder / "standin_python")


def given_python_standin(images):
    """The Python side's stand-in bundle in PYTHON_PREPROCESSED (python_standin), made from this session's spec."""
    given = json.loads((PYTHON_PREPROCESSED / "standin.json").read_text())["images"]
    assert given == images, (f"PARITY_PYTHON_PREPROCESSED={PYTHON_PREPROCESSED} was made from another spec than this "
                             f"session's stand-in images: unset it and the Python side runs here")
    return PYTHON_PREPROCESSED / "standin_python"


@dataclass
class Preprocessing(RunsInFolder):
    specs: dict
    stems: dict


@pytest.fixture(scope="module")
def preprocessed(request):
    """Each set's Bundles, by name (about 1 GB per side, removed afterwards)."""
    runs = started("preprocessed", request.session)
    try:
        runs.running.wait()
        yield {name: Bundles(images=runs.specs[name], stems=runs.stems[name]) for name in runs.specs}
    finally:
        shutil.rmtree(runs.folder, ignore_errors=True)


COUNTS = {}  # (set, output) -> (compared, identical): the summary note in the report
QUANTITIES = {"standin": "preprocessing: {} (pixel levels)",
              "geometries": "preprocessing, random geometries: {} (pixel levels)"}


def where_of(set_name, output, k, entry):
    if set_name == "standin":
        return {"image": k, "file": Path(entry["path"]).relative_to(ROOT).as_posix()}
    return {"geometry": entry["geometry"], "crop": tuple(entry["crop"]) if output == "resized_crop" else None}


def compare_set(preprocessed, set_name, output):
    """Every image of the set that has `output`, compared; counted in COUNTS."""
    bundles = preprocessed[set_name]
    results = [bundles.compare(f"{k}/{output}", output, QUANTITIES[set_name].format(output),
                               where_of(set_name, output, k, entry))
               for k, entry in enumerate(bundles.images) if output in entry.get("outputs", OUTPUTS)]
    COUNTS[(set_name, output)] = (len(results), sum(r.passed for r in results))
    return results


@pytest.mark.parametrize("output", OUTPUTS)
def test_every_stand_in_image_is_bit_identical(output, preprocessed, recorder):
    check(compare_set(preprocessed, "standin", output), recorder)


@pytest.mark.parametrize("output", GEOMETRY_OUTPUTS + [o for o in OUTPUTS if o not in GEOMETRY_OUTPUTS])
def test_random_geometries_are_bit_identical(output, preprocessed, recorder):
    check(compare_set(preprocessed, "geometries", output), recorder)


def test_the_report_counts_what_was_compared(preprocessed, report_notes):
    """The report's count of every output of both sets; what the tests above did not compare (this test run
    alone, or with -k) is compared here."""
    for set_name in QUANTITIES:
        for output in OUTPUTS:
            if (set_name, output) not in COUNTS:
                compare_set(preprocessed, set_name, output)
    standin, geometries = preprocessed["standin"].images, preprocessed["geometries"].images
    compared = sum(n for n, _ in COUNTS.values())
    identical = sum(n for _, n in COUNTS.values())
    boxes = sum(1 for entry in geometries if "resized_crop" in entry.get("outputs", OUTPUTS))
    files = len({entry["path"] for entry in geometries})
    report_notes.append(
        f"preprocessing: {len(standin)} stand-in images through the loader, each transform and both pipelines, and "
        f"{files} random images ({GEOMETRY_IMAGES} of sides 1 to {MAX_SIDE} px in modes {', '.join(MODES)}; and "
        f"{', '.join(f'{w}x{h} {mode}' for (w, h), mode in EDGE_GEOMETRIES)}) with {boxes} RandomResizedCrop boxes: "
        f"{identical} of {compared} outputs bit-identical")
    differing = [f"{set_name} {output}: {n - same} of {n}" for (set_name, output), (n, same) in COUNTS.items() if same < n]
    assert identical == compared, "outputs that differ: " + "; ".join(differing)
