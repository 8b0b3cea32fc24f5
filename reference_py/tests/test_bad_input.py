"""Bad input to every CLI: one line on stderr saying what, where and how to fix; exit 2; no output left."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from reference_py.model import resnet18_with_head
from reference_py.tests.helpers import run_cli


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_data, net_pth, small_fixtures):
    """Broken inputs of every kind, by name."""
    root = tmp_path_factory.mktemp("bad")
    paths = {"good_weights": net_pth, "missing_weights": root / "missing" / "net.pth", "data": tiny_data}
    paths["garbage_weights"] = root / "garbage.pth"
    paths["garbage_weights"].write_bytes(b"this is not a checkpoint\n" * 10)
    paths["wrong_keys"] = root / "wrong_keys.pth"
    torch.save({"weight": torch.zeros(3)}, paths["wrong_keys"])
    paths["wrong_shapes"] = root / "wrong_shapes.pth"  # a trained two-class model, not the backbone
    torch.save({k: v for k, v in resnet18_with_head().state_dict().items()}, paths["wrong_shapes"])
    paths["no_provenance"] = root / "no_provenance" / "net.pth"
    paths["no_provenance"].parent.mkdir()
    shutil.copy(net_pth, paths["no_provenance"])
    paths["empty_dir"] = root / "empty"
    paths["empty_dir"].mkdir()
    paths["no_images"] = root / "no_images"
    shutil.copytree(tiny_data, paths["no_images"])
    for image in (paths["no_images"] / "val" / "bees").iterdir():
        image.unlink()
    paths["corrupt_jpeg"] = root / "corrupt"
    shutil.copytree(tiny_data, paths["corrupt_jpeg"])
    paths["corrupt_image"] = paths["corrupt_jpeg"] / "train" / "ants" / "ant_000.jpg"
    paths["corrupt_image"].write_bytes(paths["corrupt_image"].read_bytes()[:600])
    paths["broken_fixtures"] = root / "broken_fixtures"
    shutil.copytree(small_fixtures, paths["broken_fixtures"])
    (paths["broken_fixtures"] / "weights.json").write_text("{ truncated")
    paths["bad_spec"] = root / "bad_spec.json"
    paths["bad_spec"].write_text("{'images': []}")
    paths["missing_image_spec"] = root / "missing_image_spec.json"
    paths["missing_image_spec"].write_text(json.dumps({"images": [
        {"path": str(root / "nowhere.jpg"), "crop": [0, 0, 10, 10], "flip": False}]}))
    paths["corrupt_image_spec"] = root / "corrupt_image_spec.json"
    paths["corrupt_image_spec"].write_text(json.dumps({"images": [
        {"path": str(paths["corrupt_image"]), "crop": [0, 0, 10, 10], "flip": False}]}))
    return paths


# (script, arguments with {name} placeholders, what the message must say). OUT is where output would go.
CASES = {
    "pretrained: missing --weights": ("pretrained.py", ["--weights", "{missing_weights}", "--out", "OUT"],
                                      ["{missing_weights}", "not found"]),
    "pretrained: corrupt --weights": ("pretrained.py", ["--weights", "{garbage_weights}", "--out", "OUT"],
                                      ["{garbage_weights}", "not a readable PyTorch checkpoint", "--weights"]),
    "pretrained: wrong shapes": ("pretrained.py", ["--weights", "{wrong_shapes}", "--out", "OUT"],
                                 ["{wrong_shapes}", "fc.weight [2, 512] (expected [1000, 512])"]),
    "train: missing net.pth": ("train.py", ["--weights", "{missing_weights}", "--out-dir", "OUT"],
                               ["{missing_weights}", "not found", "pretrained.py --out"]),
    "train: corrupt net.pth": ("train.py", ["--weights", "{garbage_weights}", "--out-dir", "OUT"],
                               ["{garbage_weights}", "not a readable PyTorch checkpoint", "pretrained.py --out"]),
    "train: net.pth without provenance": ("train.py", ["--weights", "{no_provenance}", "--out-dir", "OUT"],
                                          ["{no_provenance}.json not found", "pretrained.py --out"]),
    "train: missing data dir": ("train.py", ["--weights", "{good_weights}", "--data-dir", "{empty_dir}/nothing",
                                             "--out-dir", "OUT"], ["{empty_dir}/nothing", "not found", "--data-dir"]),
    "train: empty data dir": ("train.py", ["--weights", "{good_weights}", "--data-dir", "{empty_dir}",
                                           "--out-dir", "OUT"], ["{empty_dir}/train not found", "train/ants"]),
    "train: class folder without images": ("train.py", ["--weights", "{good_weights}", "--data-dir", "{no_images}",
                                                        "--out-dir", "OUT"], ["{no_images}/val/bees has no images"]),
    "train: corrupt jpeg": ("train.py", ["--weights", "{good_weights}", "--data-dir", "{corrupt_jpeg}",
                                         "--out-dir", "OUT"], ["{corrupt_image}", "not a readable image", "replace"]),
    "export_fixtures: wrong keys": ("export_fixtures.py", ["--weights", "{wrong_keys}", "--data-dir", "{data}",
                                                           "--out", "OUT"], ["{wrong_keys}", "missing entries"]),
    "export_fixtures: corrupt jpeg": ("export_fixtures.py", ["--weights", "{good_weights}", "--data-dir",
                                                             "{corrupt_jpeg}", "--out", "OUT"], ["{corrupt_image}"]),
    "export_fixtures: a count per class for three classes": (
        "export_fixtures.py", ["--weights", "{good_weights}", "--data-dir", "{data}", "--eval-per-class", "1", "2", "3",
                               "--out", "OUT"], ["--eval-per-class 1 2 3: 3 counts for 2 classes (ants, bees)"]),
    "replay: no fixtures": ("replay.py", ["--fixtures", "{empty_dir}", "--out", "OUT"],
                            ["{empty_dir}/manifest.json not found", "export_fixtures.py"]),
    "replay: damaged fixtures": ("replay.py", ["--fixtures", "{broken_fixtures}", "--out", "OUT"],
                                 ["{broken_fixtures}/weights.json", "not valid JSON", "export_fixtures.py"]),
    "preprocess: malformed spec": ("preprocess.py", ["{bad_spec}", "OUT"], ["{bad_spec}", "not valid JSON"]),
    "preprocess: corrupt jpeg": ("preprocess.py", ["{corrupt_image_spec}", "OUT"],
                                 ["{corrupt_image}", "not a readable image"]),
    "preprocess: missing image": ("preprocess.py", ["{missing_image_spec}", "OUT"], ["nowhere.jpg", "not found"]),
}


@pytest.fixture(scope="module")
def outcomes(bad, tmp_path_factory):
    """Every case run once, a few at a time (each is mostly Python and torch starting up)."""
    def run(case):
        script, arguments, _ = CASES[case]
        folder = tmp_path_factory.mktemp("case")
        args = [str(folder / "out") if a == "OUT" else a.format(**bad) for a in arguments]
        return run_cli(script, *args, cwd=folder, env={"TORCH_HOME": str(folder / "torch_home")}), folder

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CASES, pool.map(run, CASES)))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(case, bad, outcomes):
    script, _, expected = CASES[case]
    completed, folder = outcomes[case]
    assert completed.returncode == 2, completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "error:" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith(f"{script}: error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    for text in expected:
        assert text.format(**bad) in errors[0]
    leftovers = [p.name for p in folder.iterdir()]
    assert leftovers == [], f"left behind: {leftovers}"
