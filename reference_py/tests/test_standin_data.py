"""The generated stand-in set: layout, determinism, sizes, image modes, its marker and regeneration."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from reference_py import ROOT, output_claim, standin_data
from reference_py.data import check_layout, image_files, resolve_data_dir
from reference_py.tests.helpers import tree_bytes

COUNTS = {"train": 4, "val": 1}  # the four kinds of image in train/, one in val/
FEW = {"train": 1, "val": 1}


def test_layout_and_marker(tiny_data):
    assert check_layout(tiny_data) == ["ants", "bees"]
    for split, count in (("train", 4), ("val", 4)):
        for class_name in ("ants", "bees"):
            assert len(image_files(tiny_data / split / class_name)) == count
    marker = json.loads((tiny_data / standin_data.MARKER).read_text())
    assert marker["standin"] is True and "NOT the real" in marker["note"]
    assert (marker["seed"], marker["generator_version"]) == (1, standin_data.GENERATOR_VERSION)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = standin_data.generate(tmp_path / "a", seed=4, counts=COUNTS)
    again = standin_data.generate(tmp_path / "b", seed=4, counts=COUNTS)
    other = standin_data.generate(tmp_path / "c", seed=5, counts=COUNTS)
    assert tree_bytes(first) == tree_bytes(again)
    first_bytes, other_bytes = tree_bytes(first), tree_bytes(other)
    assert first_bytes.keys() == other_bytes.keys()
    # the markers say what made the set and which files it holds: the same but for the seed
    markers = (standin_data.MARKER, output_claim.MARKER)
    assert all(first_bytes[k] != other_bytes[k] for k in first_bytes if k not in markers)


def test_photo_like_sizes_and_a_few_non_rgb_images(tiny_data):
    modes, sizes = {}, set()
    for path in sorted(tiny_data.rglob("*_*.*")):
        with Image.open(path) as image:
            modes[path.relative_to(tiny_data).as_posix()] = (image.format, image.mode)
            sizes.add(image.size)
            assert all(200 <= side <= 500 for side in image.size)
    assert len(sizes) == len(modes)  # every image has its own size and aspect ratio
    assert any(w != h for w, h in sizes)
    assert modes["train/ants/ant_001.jpg"] == ("JPEG", "L")
    assert modes["val/bees/bee_002.jpg"] == ("JPEG", "CMYK")
    assert modes["train/bees/bee_003.png"] == ("PNG", "P")
    rgb = [name for name, (_, mode) in modes.items() if mode == "RGB"]
    assert len(rgb) == len(modes) - 3 * 4  # three non-RGB images in each of the four folders


def test_ensure_regenerates_only_when_out_of_date(tmp_path):
    root = standin_data.ensure_standin(tmp_path / "set", seed=2, counts=FEW)
    image = root / "train" / "ants" / "ant_000.jpg"
    before = image.stat().st_mtime_ns
    standin_data.ensure_standin(root, seed=2, counts=FEW)
    assert image.stat().st_mtime_ns == before  # up to date: untouched

    marker = json.loads((root / standin_data.MARKER).read_text())
    marker["generator_version"] = standin_data.GENERATOR_VERSION - 1
    (root / standin_data.MARKER).write_text(json.dumps(marker))
    standin_data.ensure_standin(root, seed=2, counts=FEW)
    assert json.loads((root / standin_data.MARKER).read_text())["generator_version"] == standin_data.GENERATOR_VERSION
    assert image.stat().st_mtime_ns != before

    (root / standin_data.MARKER).unlink()
    standin_data.ensure_standin(root, seed=2, counts=FEW)
    assert (root / standin_data.MARKER).exists()


def test_checking_an_up_to_date_set_imports_neither_numpy_nor_pil(tmp_path):
    # the Ruby trainer checks the stand-in through a Python process on every run on the defaults
    root = standin_data.ensure_standin(tmp_path / "set", seed=2, counts=FEW)
    check = ("import sys; from reference_py.standin_data import ensure_standin; "
             f"ensure_standin({str(root)!r}, seed=2, counts={FEW!r}); "
             "print(sorted(name for name in ('numpy', 'PIL') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_counts_per_class_make_classes_of_unequal_size(tmp_path):
    counts = {"train": {"ants": 2, "bees": 1}, "val": 1}
    root = standin_data.generate(tmp_path / "set", seed=3, counts=counts)
    assert {(split, name): len(image_files(root / split / name)) for split in ("train", "val")
            for name in ("ants", "bees")} == {("train", "ants"): 2, ("train", "bees"): 1, ("val", "ants"): 1,
                                              ("val", "bees"): 1}
    assert json.loads((root / standin_data.MARKER).read_text())["counts"] == counts
    again = standin_data.ensure_standin(root, seed=3, counts=counts)
    assert tree_bytes(again) == tree_bytes(root)  # the marker's per-class counts read back as the same set


def test_counts_per_class_must_name_every_class(tmp_path):
    with pytest.raises(ValueError, match=r"counts\['train'\] names classes \['ants'\]; give one count for each of "
                                         r"\['ants', 'bees'\]"):
        standin_data.generate(tmp_path / "set", counts={"train": {"ants": 2}, "val": 1})
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("marker,standin", [(b"[]", False), (b'{"standin": false}', False), (None, False),
                                            (b'{"standin": true, "note": "\xff"}', True)])
def test_a_data_dirs_marker_labels_it_as_rubys_standin_does(marker, standin, tmp_path):
    path = tmp_path / standin_data.MARKER  # Python took any JSON as the label, Ruby only "standin": true
    path.mkdir() if marker is None else path.write_bytes(marker)
    assert resolve_data_dir(tmp_path) == (tmp_path, standin)
