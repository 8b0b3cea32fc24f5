"""export_fixtures: the layout and manifest of fixtures/README.md, determinism, staleness."""

import json

import torch

from reference_py import export_fixtures, fixtures_format, output_claim
from reference_py.export_fixtures import ensure_fixtures
from reference_py.fixtures_format import PROTOCOL
from reference_py.strategies import RESNET18_STRATEGIES
from reference_py.tensor_io import read_bundle
from reference_py.tests.conftest import SMALL
from reference_py.tests.helpers import run_cli, tree_bytes
from reference_py.weights import file_sha256


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_layout_and_manifest(small_fixtures, net_pth, tiny_data):
    manifest = manifest_of(small_fixtures)
    expected = {"weights.json", "weights.bin", "eval.json", "eval.bin"} | {
        f"strategies/{s}/{name}.{ext}" for s in RESNET18_STRATEGIES for name in ("initial", "epoch_0", "epoch_1")
        for ext in ("json", "bin")}
    assert set(manifest["files"]) == expected
    assert set(tree_bytes(small_fixtures)) == expected | {"manifest.json", output_claim.MARKER}
    assert output_claim.read_marker(small_fixtures) == {"tool": "export_fixtures",
                                                        "files": sorted(expected | {"manifest.json"})}
    assert all(file_sha256(small_fixtures / name) == sha for name, sha in manifest["files"].items())
    assert manifest["protocol"] == {"epochs": 2, "batch_size": 4, "lr": 0.001, "momentum": 0.9,
                                    "backbone_lr": 1e-4, "head_lr": 1e-3, "step_size": 1, "gamma": 0.1}
    assert manifest["weights"] == {"provenance": "stand-in", "sha256": file_sha256(net_pth)}
    assert set(manifest["versions"]) >= {"torch", "torchvision", "libtorch"}
    assert manifest["data"]["dir"] == str(tiny_data) and manifest["data"]["standin"] is True
    assert manifest["replay_subset"]["train"] == [f"train/{c}/{c[:-1]}_{k:03d}.{'png' if k == 3 else 'jpg'}"
                                                  for c in ("ants", "bees") for k in range(3)]
    assert manifest["replay_subset"]["val"] == [f"val/{c}/{c[:-1]}_00{k}.jpg" for c in ("ants", "bees") for k in range(2)]
    assert manifest["bundles"]["strategies/finetune/epoch_0"] == [
        {"name": "order", "dtype": "int64", "shape": [6]},
        {"name": "images", "dtype": "float32", "shape": [6, 3, 224, 224]},
        {"name": "labels", "dtype": "int64", "shape": [6]}]
    assert manifest["seeds"]["strategies"]["finetune"] != manifest["seeds"]["strategies"]["scratch"]


def test_bundles_hold_what_the_protocol_needs(small_fixtures, net_pth):
    weights = read_bundle(small_fixtures / "weights")
    assert list(weights) == list(torch.load(net_pth, weights_only=True))
    evaluation, meta = read_bundle(small_fixtures / "eval", with_meta=True)
    assert evaluation["images"].shape == (4, 3, 224, 224)
    assert evaluation["labels"].tolist() == [0, 0, 1, 1]
    assert meta["class_names"] == ["ants", "bees"] and len(meta["paths"]) == 4
    assert list(read_bundle(small_fixtures / "strategies/finetune/initial")) == ["fc.weight", "fc.bias"]
    scratch = read_bundle(small_fixtures / "strategies/scratch/initial")
    assert scratch["fc.weight"].shape == (2, 512) and len(scratch) == len(weights)
    for strategy in RESNET18_STRATEGIES:
        epochs = [read_bundle(small_fixtures / f"strategies/{strategy}/epoch_{k}") for k in range(PROTOCOL["epochs"])]
        for epoch in epochs:
            assert sorted(epoch["order"].tolist()) == list(range(6))
            assert epoch["labels"].tolist() == [int(i >= 3) for i in epoch["order"].tolist()]
        assert not torch.equal(epochs[0]["images"], epochs[1]["images"])  # fresh random crops each epoch


def test_export_twice_is_byte_identical(small_fixtures, tiny_data, net_pth, tmp_path):
    completed = run_cli("export_fixtures.py", "--out", tmp_path / "again", "--data-dir", tiny_data,
                        "--weights", net_pth, "--eval-per-class", SMALL["eval_per_class"],
                        "--replay-per-class", SMALL["replay_per_class"])
    assert completed.returncode == 0, completed.stderr
    assert "stand-in weights (sha256" in completed.stderr
    assert tree_bytes(tmp_path / "again") == tree_bytes(small_fixtures)


def test_ensure_regenerates_only_when_stale(tiny_data, net_pth, tmp_path, monkeypatch):
    out = tmp_path / "fixtures"
    settings = dict(SMALL, strategies=["feature_extractor"], eval_per_class=2, replay_per_class=2)
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    manifest = out / "manifest.json"
    before = manifest.stat().st_mtime_ns
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    assert manifest.stat().st_mtime_ns == before

    (out / "eval.bin").write_bytes(b"damaged")
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    assert file_sha256(out / "eval.bin") == manifest_of(out)["files"]["eval.bin"]
    after_repair = manifest.stat().st_mtime_ns
    assert after_repair != before

    monkeypatch.setattr(fixtures_format, "GENERATOR_VERSION", fixtures_format.GENERATOR_VERSION + 1)
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    assert manifest_of(out)["generator_version"] == fixtures_format.GENERATOR_VERSION
    assert manifest.stat().st_mtime_ns != after_repair


def test_changed_images_make_the_fixtures_stale(tiny_data, net_pth, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in tiny_data.rglob("*"):
        target = data / path.relative_to(tiny_data)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    out = tmp_path / "fixtures"
    settings = dict(SMALL, strategies=["finetune"], eval_per_class=1, replay_per_class=1)
    first = ensure_fixtures(out, data_dir=data, weights_path=net_pth, **settings)
    swapped = data / "val" / "ants" / "ant_000.jpg"
    swapped.write_bytes((data / "val" / "ants" / "ant_001.jpg").read_bytes())
    second = ensure_fixtures(out, data_dir=data, weights_path=net_pth, **settings)
    assert first["data"]["sha256"] != second["data"]["sha256"]
    assert first["files"]["eval.bin"] != second["files"]["eval.bin"]


def test_a_fresh_clones_fixtures_folder_is_exported_into_and_its_readme_kept(tiny_data, net_pth, tmp_path):
    """A clone has fixtures/ with only the committed README.md: the first export writes beside it, and an
    export that replaces the fixtures keeps it."""
    out = tmp_path / "fixtures"
    out.mkdir()
    (out / "README.md").write_text("the format\n")
    settings = dict(SMALL, strategies=["feature_extractor"], eval_per_class=1, replay_per_class=1)
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    assert (out / "README.md").read_text() == "the format\n"
    assert all((out / name).is_file() for name in manifest_of(out)["files"])
    (out / "eval.bin").write_bytes(b"damaged")
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **settings)
    assert file_sha256(out / "eval.bin") == manifest_of(out)["files"]["eval.bin"]
    assert (out / "README.md").read_text() == "the format\n"


def test_counts_per_class_choose_unequal_subsets_ending_on_a_partial_batch(tiny_data, net_pth, tmp_path):
    settings = dict(SMALL, strategies=["feature_extractor"], eval_per_class=[1, 2], replay_per_class=[3, 2])
    manifest = ensure_fixtures(tmp_path / "fixtures", data_dir=tiny_data, weights_path=net_pth, **settings)
    assert manifest["config"]["eval_per_class"] == [1, 2] and manifest["config"]["replay_per_class"] == [3, 2]
    assert manifest["replay_subset"]["val"] == ["val/ants/ant_000.jpg", "val/bees/bee_000.jpg", "val/bees/bee_001.jpg"]
    assert [path.split("/")[1] for path in manifest["replay_subset"]["train"]] == ["ants"] * 3 + ["bees"] * 2
    assert read_bundle(tmp_path / "fixtures" / "eval")["labels"].tolist() == [0, 1, 1]
    epoch = read_bundle(tmp_path / "fixtures" / "strategies/feature_extractor/epoch_0")
    assert epoch["images"].shape[0] == 5  # batches of 4 and 1
    assert epoch["labels"].tolist() == [int(i >= 3) for i in epoch["order"].tolist()]


def test_one_number_is_every_class_count():
    assert export_fixtures.make_config(eval_per_class=[3], replay_per_class=2) == export_fixtures.make_config(
        eval_per_class=3, replay_per_class=[2])
