"""net.pth: where it comes from (--weights, the hub cache, the stand-in), its provenance, its checks."""

import json

import pytest
import torch
import torchvision

from reference_py.errors import UserError
from reference_py.pretrained import HUB_FILE, HUB_SHA256_PREFIX, make_net, provenance_of, standin_state_dict
from reference_py.tests.helpers import run_cli, torch_imported_by
from reference_py.weights import (FINITE_CHUNK, IMAGENET_URLS, expected_entries, file_sha256, load_weights,
                                  provenance_path, save_state_dict, validate)


def checkpoint_like_torchvisions(path, seed):
    """A ResNet-18 checkpoint with the published file's keys (no num_batches_tracked), as an OrderedDict."""
    torch.manual_seed(seed)
    state = torchvision.models.resnet18(weights=None).state_dict()
    for name in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[name]
    torch.save(state, path)
    return state


def test_hub_file_name_is_torchvisions():
    assert HUB_FILE == "resnet18-f37072fd.pth"
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.endswith("/" + HUB_FILE)


def test_pretrained_loads_without_torch():
    """pretrained.py checks its options and claims --out before LibTorch loads."""
    assert torch_imported_by("reference_py.pretrained") == []


def test_the_written_out_urls_are_torchvisions():
    assert IMAGENET_URLS == {"resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url,
                             "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1.url}


def test_standin_is_deterministic_with_non_trivial_batch_norm_statistics(net_pth):
    first, other = standin_state_dict(3), standin_state_dict(4)
    again = torch.load(net_pth, weights_only=True)  # the session's stand-in, made from seed 3 too
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    for name in ("bn1", "layer2.1.bn2", "layer4.1.bn2"):
        assert first[f"{name}.running_mean"].abs().max() > 1e-4
        assert not torch.allclose(first[f"{name}.running_var"], torch.ones_like(first[f"{name}.running_var"]))


def test_standin_net_is_a_plain_dict_with_provenance(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    record = make_net(tmp_path / "net.pth", seed=5)
    assert "STAND-IN" in capsys.readouterr().err
    loaded = torch.load(tmp_path / "net.pth", weights_only=True)
    assert type(loaded) is dict and len(loaded) == 122
    stored = json.loads(provenance_path(tmp_path / "net.pth").read_text())
    assert stored == record
    assert stored["provenance"] == "stand-in" and stored["source"] == "seed 5"
    assert stored["sha256"] == file_sha256(tmp_path / "net.pth")
    assert stored["torch_version"] == torch.__version__
    weights = load_weights(tmp_path / "net.pth")
    assert (weights.provenance, weights.sha256) == ("stand-in", stored["sha256"])


def test_save_state_dict_writes_the_same_bytes_each_time(net_pth, tmp_path):
    """The same weights make the same bytes (ruby_port/test/weights_test.rb holds the same for Ruby's): an archive
    named "archive", not after the temporary file it is written to."""
    state = torch.load(net_pth, weights_only=True)
    paths = [tmp_path / name / "best.pth" for name in ("a", "b")]
    for path in paths:
        save_state_dict(path, state)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes()[30:46] == b"archive/data.pkl"


def test_the_hub_cache_checkpoint_is_used(tmp_path):
    hub_file = tmp_path / "torch_home" / "hub" / "checkpoints" / HUB_FILE
    hub_file.parent.mkdir(parents=True)
    original = checkpoint_like_torchvisions(hub_file, seed=7)
    completed = run_cli("pretrained.py", "--out", tmp_path / "net.pth", env={"TORCH_HOME": str(tmp_path / "torch_home")})
    assert completed.returncode == 0, completed.stderr
    assert "STAND-IN" not in completed.stderr
    record = json.loads(provenance_path(tmp_path / "net.pth").read_text())
    assert record["provenance"] == "user-supplied"  # torchvision's layout, not its file: the sha256 says so
    assert "labelled user-supplied" in completed.stderr
    assert record["source"] == str(hub_file)
    assert record["source_sha256"] == file_sha256(hub_file)
    net = torch.load(tmp_path / "net.pth", weights_only=True)
    assert all(torch.equal(net[k], original[k]) for k in original)
    assert all(int(net[k]) == 0 for k in net if k.endswith("num_batches_tracked"))


def test_a_weights_file_comes_before_the_hub_cache(tmp_path, monkeypatch):
    hub_file = tmp_path / "torch_home" / "hub" / "checkpoints" / HUB_FILE
    hub_file.parent.mkdir(parents=True)
    checkpoint_like_torchvisions(hub_file, seed=7)
    mine = checkpoint_like_torchvisions(tmp_path / "mine.pth", seed=8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    record = make_net(tmp_path / "net.pth", weights_file=tmp_path / "mine.pth")
    assert (record["provenance"], record["source"]) == ("user-supplied", str(tmp_path / "mine.pth"))
    weights = load_weights(tmp_path / "net.pth")
    assert torch.equal(weights.state_dict["fc.weight"], mine["fc.weight"])


def test_only_torchvisions_file_is_labelled_imagenet():
    """torch.hub's check: the digits in resnet18-f37072fd.pth begin the sha256 of the real file."""
    assert HUB_SHA256_PREFIX == "f37072fd"
    assert provenance_of(HUB_SHA256_PREFIX + "0" * 56) == "imagenet"
    assert provenance_of("0" * 64) == "user-supplied"


def test_pretrained_never_replaces_a_file_it_did_not_write(net_pth, tmp_path):
    mine = tmp_path / "net.pth"
    mine.write_bytes(b"the user's checkpoint")
    completed = run_cli("pretrained.py", "--out", mine, env={"TORCH_HOME": str(tmp_path / "torch_home")})
    assert completed.returncode == 2 and "was not written by pretrained" in completed.stderr
    assert mine.read_bytes() == b"the user's checkpoint" and not provenance_path(mine).exists()
    assert f"pretrained.py --out {tmp_path / 'net-1.pth'}" in str(pytest.raises(UserError, load_weights, mine).value)


def test_a_replaced_net_pth_no_longer_matches_its_provenance(net_pth, tmp_path):
    copy = tmp_path / "net.pth"
    copy.write_bytes(net_pth.read_bytes())
    provenance_path(copy).write_text(provenance_path(net_pth).read_text())
    assert load_weights(copy).provenance == "stand-in"
    state = torch.load(copy, weights_only=True)
    state["fc.bias"] = state["fc.bias"] + 1
    torch.save(state, copy)
    with pytest.raises(UserError, match="is not the file"):
        load_weights(copy)


def test_validate_names_what_is_wrong():
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    validate(state, "ok.pth")
    state["fc.weight"] = torch.zeros(2, 512)
    state["extra"] = torch.zeros(1)
    del state["conv1.weight"]
    with pytest.raises(UserError) as error:
        validate(state, "bad.pth")
    message = str(error.value)
    assert "conv1.weight" in message and "extra" in message and "fc.weight [2, 512] (expected [1000, 512])" in message


def saved_with_provenance(path, state_dict, provenance="user-supplied", source_sha256=None):
    """A checkpoint as given, with a net.pth.json that matches it (the checks below are of its content)."""
    save_state_dict(path, state_dict)
    provenance_path(path).write_text(json.dumps({"provenance": provenance, "source": "a test", "source_sha256": source_sha256,
                                                 "sha256": file_sha256(path)}))
    return path


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_a_dtype_conversion_is_said_in_one_line(net_pth, tmp_path, capsys, dtype):
    """The twin: ruby_port/test/weights_test.rb."""
    state = torch.load(net_pth, weights_only=True)
    floats = [k for k, v in state.items() if v.is_floating_point()]
    path = saved_with_provenance(tmp_path / "net.pth", {k: v.to(dtype) if k in floats else v for k, v in state.items()})
    weights = load_weights(path)
    name = str(dtype).removeprefix("torch.")
    assert capsys.readouterr().err.splitlines() == [
        f"weights: {path}: entries converted to the model's dtype as they load: {len(floats)} {name} to float32 (first: {floats[0]})"]
    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(weights.state_dict)
    assert model.conv1.weight.dtype == torch.float32


def test_weights_that_are_not_finite_are_refused(net_pth, tmp_path):
    state = torch.load(net_pth, weights_only=True)
    state["fc.bias"][3] = float("inf")
    state["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = saved_with_provenance(tmp_path / "net.pth", state)
    with pytest.raises(UserError) as refused:
        load_weights(path)
    assert str(refused.value).startswith(f"{path}: 2 of its {len(state)} entries hold NaN or infinite values "
                                         f"(first: layer1.0.conv1.weight, fc.bias); these weights cannot train: make a new file")


@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_the_expected_entries_are_the_models_and_draw_nothing_from_the_generator(arch):
    """expected_entries builds the model uninitialised: the same names, shapes and dtypes, the generator untouched,
    and torch.nn.init's fills back once it is built (a model built then draws from the generator)."""
    expected_entries.cache_clear()
    before = torch.random.get_rng_state()
    entries = expected_entries(arch)
    assert torch.equal(torch.random.get_rng_state(), before)
    model = getattr(torchvision.models, arch)(weights=None)
    assert not torch.equal(torch.random.get_rng_state(), before)
    assert list(entries.items()) == [(name, (tuple(t.shape), t.dtype)) for name, t in model.state_dict().items()]


def test_a_value_that_is_not_finite_is_found_in_the_last_chunk_of_a_tensor(net_pth, tmp_path):
    """Finiteness is checked FINITE_CHUNK values at a time: every chunk of a tensor, to its last value."""
    state = torch.load(net_pth, weights_only=True)
    name = "layer4.1.conv2.weight"
    assert state[name].numel() > 2 * FINITE_CHUNK
    state[name].view(-1)[-1] = float("nan")
    path = saved_with_provenance(tmp_path / "net.pth", state)
    with pytest.raises(UserError) as refused:
        load_weights(path)
    assert str(refused.value).startswith(f"{path}: 1 of its {len(state)} entries hold NaN or infinite values (first: {name})")


def test_imagenet_only_for_a_source_whose_sha256_is_torchvisions(net_pth, tmp_path):
    state = torch.load(net_pth, weights_only=True)
    claimed = saved_with_provenance(tmp_path / "claimed.pth", state, "imagenet")
    with pytest.raises(UserError) as refused:
        load_weights(claimed)
    assert str(refused.value).startswith(f"{claimed}.json says imagenet, but the sha256 of its source (null) does not start "
                                         f"with {HUB_SHA256_PREFIX}, as torchvision's {HUB_FILE} does; make a new file")
    made = saved_with_provenance(tmp_path / "made.pth", state, "imagenet", HUB_SHA256_PREFIX + "0" * 56)
    assert load_weights(made).provenance == "imagenet"
