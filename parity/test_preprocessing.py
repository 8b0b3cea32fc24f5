"""Preprocessing: the same JPEGs through Python's (PIL) and Ruby's (libvips) transforms.

Reported per transform in pixel levels (1 level = 1/255, ToTensor's step), max and mean absolute
difference, against a bound stated here. Decoding, flipping and cropping are exact operations and
must agree exactly; resampling differs between PIL and libvips, so it has a bound instead.
"""

import json
import subprocess
import sys

import pytest
import torch

from parity.compare import Comparison, check
from parity.ruby import ROOT, run_ruby
from parity.tolerances import PIXEL_LEVEL, Tolerance
from reference_py import threads
from reference_py.tensor_io import read_bundle

NORMALIZE_STD_MIN = 0.224  # the smallest ImageNet std: one pixel level becomes 1/255/0.224 after Normalize

# Bounds in pixel levels, per transform; what each side does is named so the bound can be judged.
BOUNDS = {
    "to_tensor": (0.0, "JPEG decoding and uint8 -> float: exact"),
    "hflip": (0.0, "a mirror of the decoded pixels: exact"),
    "normalize": (0.0, "the same float arithmetic on the same values: exact"),
    "center_crop": (0.0, "a crop of the decoded pixels at the same offsets: exact"),
    "resize": (64.0, "PIL bilinear with antialias vs libvips thumbnail (shrink + lanczos3): different filters"),
    "resized_crop": (64.0, "crop exact, then PIL bilinear vs libvips thumbnail"),
    "val": (64.0 / NORMALIZE_STD_MIN, "resize difference carried through center crop and Normalize"),
}


@pytest.fixture(scope="module")
def preprocessed(fixtures_dir, tmp_path_factory):
    manifest = json.loads((fixtures_dir / "manifest.json").read_text())
    data_dir = ROOT / manifest["data"]["dir"] if not str(manifest["data"]["dir"]).startswith("/") else manifest["data"]["dir"]
    paths = [str(p) for p in sorted((ROOT / data_dir / "val").glob("*/*")) if p.is_file()][::5][:8]
    assert paths, f"no val images found under {data_dir}"
    images = [{"path": path, "crop": [10 + 3 * k, 20 + 2 * k, 150, 120], "flip": bool(k % 2)} for k, path in enumerate(paths)]
    spec = tmp_path_factory.mktemp("preprocess") / "spec.json"
    spec.write_text(json.dumps({"images": images}))
    python_out, ruby_out = spec.with_name("python"), spec.with_name("ruby")
    completed = subprocess.run([sys.executable, str(ROOT / "reference_py" / "preprocess.py"), str(spec), str(python_out)],
                               cwd=ROOT, env=threads.subprocess_env(), capture_output=True, text=True)
    assert completed.returncode == 0, f"python preprocess failed:\n{completed.stderr}"
    run_ruby("preprocess", spec, ruby_out)
    return read_bundle(ruby_out), read_bundle(python_out), len(images)


@pytest.mark.parametrize("transform", list(BOUNDS))
def test_transform_agrees_within_bound(transform, preprocessed, recorder):
    ruby, python, count = preprocessed
    bound_levels, why = BOUNDS[transform]
    comparisons = []
    for k in range(count):
        key = f"{k}/{transform}"
        result = Comparison(quantity=f"preprocessing: {transform} (pixel levels)", where={"image": k},
                            tolerance=Tolerance(atol=bound_levels))
        if ruby[key].shape != python[key].shape:
            result.problem = f"shape {tuple(ruby[key].shape)} in ruby, {tuple(python[key].shape)} in python"
        else:
            levels = (ruby[key].double() - python[key].double()).abs() / PIXEL_LEVEL
            result.numel = levels.numel()
            result.mismatched = int((levels > bound_levels + 1e-6).sum())
            result.max_abs = float(levels.max())
            result.notes.append(f"mean {float(levels.mean()):.4g} levels; bound {bound_levels:g} levels: {why}")
        comparisons.append(result)
    check(comparisons, recorder)
