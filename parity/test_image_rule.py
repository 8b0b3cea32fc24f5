"""What counts as an image in a class folder (issue 19): one rule, torchvision 0.14's, on both sides.

torchvision's ImageFolder takes, below each class folder, every entry that is not a folder and whose name ends
in an image extension: hidden files, the files of nested and hidden folders, links to files, links to folders
followed (os.walk(followlinks=True)). The pre-checks refuse what it would hang or fail on (a named pipe, a
socket or a device with an image extension; links to folders or to nothing: parity/test_bad_input.py), and
decode every image as PIL does, a damaged JPEG too: PIL decodes what libjpeg decodes through, and refuses
libjpeg's errors and data that end before the last row. Here, with the Ruby side in one process
(parity/image_rule_side.rb):

- a data dir both pre-checks accept, with a hidden file, a hidden folder, nested folders, an upper-case
  extension, a link to an image, files that are not images and a damaged JPEG that PIL decodes: each side's
  image_datasets (pre-check, then ImageFolder) must list the same classes and samples in the same order, and
  decode each sample into the same pixels;
- a folder of what the pre-checks refuse (a named pipe, a socket, a link to a device, to nothing, a link loop,
  a link to another class folder, a folder named *.jpg) through ImageFolder alone: pytorch_parity's must list
  what torchvision's lists;
- JPEGs damaged every way (random bytes written into or over the scan data, cut short, garbage instead of
  the end marker), in each colour space the loader meets: both loaders decode each into the same pixels, or
  both refuse it;
and the Ruby side says nothing on stderr (PIL says nothing about a damaged JPEG).
"""

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets

from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command
from reference_py.data import SPLITS, image_datasets, rgb_loader
from reference_py.data_layout import IMG_EXTENSIONS
from reference_py.errors import UserError
from reference_py.standin_data import generate

pytestmark = [pytest.mark.extended, pytest.mark.bad_input]

DAMAGE_SEEDS = range(3)  # per base image and kind of damage
RANDOM_BYTES = 200


def scan_data(data):
    """(start, end) of a JPEG's entropy-coded data: after its first scan header, before its end marker."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big"), data.rindex(b"\xff\xd9")


def damaged(data, seed, overwrite):
    """RANDOM_BYTES random bytes written into (or over) the scan data at a random place."""
    rng = np.random.default_rng(seed)
    start, end = scan_data(data)
    at = int(rng.integers(start, end - RANDOM_BYTES))
    noise = rng.bytes(RANDOM_BYTES)
    return data[:at] + noise + data[at + (RANDOM_BYTES if overwrite else 0):]


def damaged_jpegs(base):
    """name -> bytes: every kind of damage to one JPEG."""
    start, end = scan_data(base)
    variants = {f"inserted_{seed}": damaged(base, seed, False) for seed in DAMAGE_SEEDS}
    variants.update({f"overwritten_{seed}": damaged(base, seed, True) for seed in DAMAGE_SEEDS})
    variants["cut_1"] = base[:-1]  # the end marker's second byte gone
    variants["cut_half"] = base[:(start + end) // 2]
    garbage = bytes(np.random.default_rng(7).integers(0, 255, RANDOM_BYTES, dtype=np.uint8))  # no 0xFF: no marker
    variants["garbage_for_end_marker"] = base[:-2] + garbage
    return variants


def jpeg(image, **options):
    stream = io.BytesIO()
    image.save(stream, "JPEG", **options)
    return stream.getvalue()


def decoded(path):
    """sha256 of the loader's pixels (np.asarray's bytes), or its one-line refusal: image_rule_side.rb's twin."""
    try:
        pixels = np.asarray(rgb_loader(path))
    except UserError as error:
        return {"refused": str(error)}
    return {"sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "shape": list(pixels.shape)}


def decodes_with_pil(data):
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return True
    except OSError:
        return False


def tricky_data(root, damaged_image):
    """A data dir both pre-checks accept, with everything ImageFolder takes that a plain listing would not."""
    data = generate(root / "data", seed=3, counts={"train": 2, "val": 2})
    ants, bees = data / "train" / "ants", data / "train" / "bees"
    first = sorted(ants.glob("*.jpg"))[0]
    for relative in (".hidden.jpg", ".thumbs/thumb.jpg", "nested/deeper/upper.JPG", "nested-2/more.jpg"):
        (ants / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(first, ants / relative)
    (ants / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    os.symlink(os.path.relpath(first, bees), bees / "linked.jpg")
    (bees / "notes.txt").write_text("not an image\n")
    os.mkfifo(bees / "pipe")  # no image extension: ImageFolder never opens it
    (data / "val" / "bees" / "damaged.jpg").write_bytes(damaged_image)
    return data


def listing_folder(root):
    """What the pre-checks refuse, for ImageFolder alone (which opens nothing until a sample is read)."""
    ants, bees = root / "listing" / "ants", root / "listing" / "bees"
    for folder in (ants / "dir.jpg", ants / ".hidden", bees):
        folder.mkdir(parents=True)
    for path in (ants / "a.jpg", ants / "UPPER.PNG", ants / "dir.jpg" / "inner.png", ants / ".hidden" / "h.jpg",
                 bees / "b.jpeg", bees / ".x.webp", bees / "notes.txt"):
        path.write_bytes(b"not decoded")
    os.mkfifo(ants / "pipe.jpg")
    os.mknod(ants / "sock.jpg", stat.S_IFSOCK | 0o600)
    os.symlink("/dev/null", ants / "null.jpg")
    os.symlink("nowhere.jpg", ants / "gone.jpg")
    os.symlink(".", ants / "loop")  # followed until the path no longer resolves (too many links)
    os.symlink("../bees", ants / "up")
    return root / "listing"


def relative(samples, root):
    return [[os.path.relpath(path, root), target] for path, target in samples]


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    """The same lists and decodings from both sides: {"python": ..., "ruby": ..., "ruby_stderr": ...}."""
    root = tmp_path_factory.mktemp("image_rule")
    standin = generate(root / "bases", seed=5, counts={"train": 1, "val": 1})
    photo = Image.open(sorted((standin / "train" / "ants").glob("*.jpg"))[0]).convert("RGB")
    bases = {"ycbcr": jpeg(photo, quality=85), "progressive": jpeg(photo, quality=80, progressive=True),
             "gray": jpeg(photo.convert("L"), quality=90), "cmyk": jpeg(photo.convert("CMYK"), quality=90)}
    images = root / "images"
    images.mkdir()
    for base_name, base in bases.items():
        for name, data in damaged_jpegs(base).items():
            (images / f"{base_name}_{name}.jpg").write_bytes(data)
    image_paths = sorted(str(path) for path in images.iterdir())
    pil_decodes = next(data for seed in range(100) if decodes_with_pil(data := damaged(bases["ycbcr"], seed, False)))
    data = tricky_data(root, pil_decodes)
    listing = listing_folder(root)

    spec = root / "spec.json"
    spec.write_text(json.dumps({"data_dir": str(data), "listing_root": str(listing), "images": image_paths}))
    command = Command("Ruby", ["ruby", str(ROOT / "parity" / "image_rule_side.rb"), str(RUBY_PORT), str(spec),
                               str(root / "ruby.json")])
    ruby = subprocess.Popen(command.argv, cwd=ROOT, env=command.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    python = {"datasets": {}, "images": [decoded(path) for path in image_paths]}
    for split, dataset in image_datasets(data).items():
        python["datasets"][split] = {"classes": dataset.classes, "samples": relative(dataset.samples, data / split),
                                     "pixels": [decoded(path) for path, _ in dataset.samples]}
    python["listing"] = relative(datasets.ImageFolder(listing).samples, listing)

    _, stderr = ruby.communicate(timeout=600)
    assert ruby.returncode == 0, f"the Ruby side failed (exit {ruby.returncode}):\n{stderr[-8000:]}"
    return {"python": python, "ruby": json.loads((root / "ruby.json").read_text()), "ruby_stderr": stderr,
            "image_names": [os.path.basename(path) for path in image_paths]}


def differences(python, ruby):
    """The entries of two lists that differ, by index, at most ten."""
    found = [f"[{k}] python {p} / ruby {r}" for k, (p, r) in enumerate(zip(python, ruby)) if p != r]
    if len(python) != len(ruby):
        only_python, only_ruby = [x for x in python if x not in ruby][:5], [x for x in ruby if x not in python][:5]
        found.append(f"python lists {len(python)}, ruby {len(ruby)}: only in python {only_python}, only in ruby {only_ruby}")
    return "\n".join(found[:10])


@pytest.mark.parametrize("split", SPLITS)
def test_both_sides_train_on_the_same_images(split, sides):
    python, ruby = sides["python"]["datasets"][split], sides["ruby"]["datasets"][split]
    assert ruby["classes"] == python["classes"]
    assert ruby["samples"] == python["samples"], differences(python["samples"], ruby["samples"])
    assert ruby["pixels"] == python["pixels"], differences(python["pixels"], ruby["pixels"])


def test_the_tricky_files_are_images_as_torchvision_says(sides):
    """The data dir holds what it is meant to test: torchvision takes each of these (hidden, nested, linked, damaged)."""
    samples = {path for split in SPLITS for path, _ in sides["python"]["datasets"][split]["samples"]}
    assert {"ants/.hidden.jpg", "ants/.thumbs/thumb.jpg", "ants/nested/deeper/upper.JPG", "ants/nested-2/more.jpg",
            "bees/linked.jpg", "bees/damaged.jpg"} <= samples


def test_image_folder_lists_what_torchvision_lists(sides):
    python, ruby = sides["python"]["listing"], sides["ruby"]["listing"]
    assert ruby == python, differences(python, ruby)


def test_the_pre_checks_take_the_extensions_both_image_folders_take(sides):
    """The pre-checks run before torchvision loads, so each side writes out ImageFolder's extensions (data_layout.py,
    data_layout.rb): both lists must be torchvision's, and torchvision-ruby's."""
    ruby = sides["ruby"]["extensions"]
    lists = {"reference_py/data_layout.py": list(IMG_EXTENSIONS), "torchvision": list(datasets.folder.IMG_EXTENSIONS),
             "ruby_port/lib/hymenoptera/data_layout.rb": ruby["port"], "torchvision-ruby": ruby["torchvision"]}
    assert len({tuple(extensions) for extensions in lists.values()}) == 1, lists


def test_damaged_jpegs_are_decoded_or_refused_as_pil_does(sides):
    python, ruby = sides["python"]["images"], sides["ruby"]["images"]
    names = sides["image_names"]
    disagree = [f"{name}: python {p}, ruby {r}" for name, p, r in zip(names, python, ruby)
                if p != r and not ("refused" in p and "refused" in r)]
    assert not disagree, "\n".join(disagree)
    refused = sum("refused" in p for p in python)
    assert 0 < refused < len(python), f"PIL refuses {refused} of {len(python)}: the set no longer has both kinds"


def test_the_ruby_loader_says_nothing_about_damaged_data(sides):
    words = ("VIPS", "JPEG", "Corrupt")  # libvips' log, libjpeg's messages
    said = [line for line in sides["ruby_stderr"].splitlines() if any(word in line for word in words)]
    assert not said, "\n".join(said[:10])


# Ruby's side of the next test: pytorch_parity's ImageFolder on FOLDER, its error as JSON (nothing: null).
IMAGE_FOLDER_ERROR_RB = """
require "json"
begin
  TorchVision::Datasets::ImageFolder.new(ARGV[0], is_valid_file: ARGV[1] ? ->(path) { path.end_with?(ARGV[1]) } : nil)
  puts JSON.generate(nil)
rescue StandardError => e
  puts JSON.generate({"class" => e.class.ancestors.include?(Errno::ENOENT) ? "FileNotFoundError" : e.class.name,
                      "message" => e.message})
end
"""


def test_image_folder_refuses_a_class_without_a_valid_file_in_torchvisions_words(tmp_path):
    """torchvision 0.14 refuses a class folder without a file it takes (FileNotFoundError, naming every such class,
    then the extensions); pytorch_parity's ImageFolder raises the same message (an Errno::ENOENT). With
    is_valid_file, ImageFolder passes no extensions and the message ends after the classes."""
    (tmp_path / "ants").mkdir()
    (tmp_path / "ants" / "a.jpg").write_bytes(b"not decoded")
    (tmp_path / "bees" / "empty").mkdir(parents=True)
    (tmp_path / "wasps").mkdir()
    (tmp_path / "wasps" / "w.gif").write_bytes(b"not decoded")
    for valid_suffix in (None, "a.jpg"):
        try:
            datasets.ImageFolder(tmp_path, is_valid_file=valid_suffix and (lambda path: path.endswith(valid_suffix)))
            python = None
        except Exception as error:  # noqa: BLE001 - whatever torchvision raises is what Ruby must raise
            python = {"class": type(error).__name__, "message": str(error)}
        command = Command("Ruby", ["ruby", "-I", str(RUBY_PORT / "lib"), "-rbundler/setup", "-rpytorch_parity", "-e",
                                   IMAGE_FOLDER_ERROR_RB, str(tmp_path), *([valid_suffix] if valid_suffix else [])])
        completed = subprocess.run(command.argv, cwd=ROOT, env=command.env(), capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr
        assert python is not None and python["class"] == "FileNotFoundError", python
        assert json.loads(completed.stdout) == python
