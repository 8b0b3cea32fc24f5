"""The tutorial's transforms, the RGB loader, and preprocess.py's bundle."""

import json

import pytest
import torch
from PIL import Image
from torchvision import transforms

from reference_py.data import MEAN, STD, data_transforms, image_files, rgb_loader
from reference_py.tensor_io import read_bundle
from reference_py.tests.helpers import run_cli


@pytest.fixture(scope="module")
def photo(tiny_data):
    return rgb_loader(image_files(tiny_data / "val" / "bees")[0])


def test_normalization_constants_are_imagenets():
    assert MEAN == [0.485, 0.456, 0.406]
    assert STD == [0.229, 0.224, 0.225]
    for pipeline in data_transforms.values():
        normalize = pipeline.transforms[-1]
        assert isinstance(normalize, transforms.Normalize)
        assert (normalize.mean, normalize.std) == (MEAN, STD)


def test_pipelines_are_the_tutorials():
    train, val = data_transforms["train"].transforms, data_transforms["val"].transforms
    assert [type(t) for t in train] == [transforms.RandomResizedCrop, transforms.RandomHorizontalFlip,
                                        transforms.ToTensor, transforms.Normalize]
    assert train[0].size == (224, 224)
    assert [type(t) for t in val] == [transforms.Resize, transforms.CenterCrop, transforms.ToTensor,
                                      transforms.Normalize]
    assert val[0].size == 256 and val[1].size == (224, 224)


def test_a_uniform_image_normalizes_channel_by_channel():
    levels = (200, 100, 30)
    tensor = data_transforms["val"](Image.new("RGB", (300, 260), levels))
    for channel, level in enumerate(levels):
        expected = (level / 255 - MEAN[channel]) / STD[channel]
        assert torch.allclose(tensor[channel], torch.full((224, 224), expected), atol=1e-6)


def test_val_transform_is_deterministic(photo):
    first, second = data_transforms["val"](photo), data_transforms["val"](photo)
    assert first.shape == (3, 224, 224) and first.dtype == torch.float32
    assert torch.equal(first, second)


def test_train_transform_is_random_but_seeded(photo):
    def crop(seed):
        torch.manual_seed(seed)
        return data_transforms["train"](photo)

    assert crop(0).shape == (3, 224, 224)
    assert torch.equal(crop(0), crop(0))
    assert not torch.equal(crop(0), crop(1))


@pytest.mark.parametrize("index, mode", [(1, "L"), (2, "CMYK"), (3, "P"), (0, "RGB")])
def test_loader_converts_every_mode_to_rgb(tiny_data, index, mode):
    path = image_files(tiny_data / "train" / "ants")[index]
    with Image.open(path) as original:
        assert original.mode == mode
    image = rgb_loader(path)
    assert image.mode == "RGB"
    if mode == "L":
        red, green, blue = image.split()
        assert red.tobytes() == green.tobytes() == blue.tobytes()


def test_preprocess_cli_writes_every_transform(tiny_data, tmp_path):
    paths = image_files(tiny_data / "val" / "ants")[:2]
    spec = {"images": [{"path": str(paths[0]), "crop": [10, 20, 150, 120], "flip": False},
                       {"path": str(paths[1]), "crop": [0, 0, 100, 180], "flip": True}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    completed = run_cli("preprocess.py", tmp_path / "spec.json", tmp_path / "out")
    assert completed.returncode == 0, completed.stderr
    bundle = read_bundle(tmp_path / "out")
    names = ["to_tensor", "resize", "center_crop", "normalize", "val", "resized_crop", "hflip", "train"]
    assert list(bundle) == [f"{k}/{name}" for k in range(2) for name in names]
    for k, path in enumerate(paths):
        image = rgb_loader(path)
        width, height = image.size
        to_tensor = bundle[f"{k}/to_tensor"]
        assert to_tensor.shape == (3, height, width)
        assert min(bundle[f"{k}/resize"].shape[1:]) == 256
        assert bundle[f"{k}/center_crop"].shape == (3, 224, 224)
        mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
        assert torch.allclose(bundle[f"{k}/normalize"], (to_tensor - mean) / std, atol=1e-6)
        assert torch.equal(bundle[f"{k}/val"], data_transforms["val"](image))
        assert torch.equal(bundle[f"{k}/hflip"], to_tensor.flip(-1))
        assert bundle[f"{k}/resized_crop"].shape == (3, 224, 224)
    flipped = (bundle["1/resized_crop"] - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(bundle["1/train"], flipped.flip(-1), atol=1e-6)
