"""The tutorial's transforms, the RGB loader, and preprocess.py's bundle."""

import json

import numpy as np
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
    spec = {"images": [{"path": str(paths[0]), "crop": [10, 20, 150, 120], "seed": 3},
                       {"path": str(paths[1]), "crop": [0, 0, 100, 180], "outputs": ["resized_crop", "train"]}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    completed = run_cli("preprocess.py", tmp_path / "spec.json", tmp_path / "out")
    assert completed.returncode == 0, completed.stderr
    bundle = read_bundle(tmp_path / "out")
    names = ["decoded", "resize", "center_crop", "resized_crop", "hflip", "to_tensor", "normalize", "val", "train"]
    assert list(bundle) == [f"0/{name}" for name in names] + ["1/resized_crop", "1/train"]
    image = rgb_loader(paths[0])
    width, height = image.size
    decoded = bundle["0/decoded"]
    assert decoded.dtype == torch.uint8 and decoded.shape == (height, width, 3)
    assert torch.equal(bundle["0/hflip"], decoded.flip(1))
    assert min(bundle["0/resize"].shape[:2]) == 256
    assert bundle["0/center_crop"].shape == bundle["0/resized_crop"].shape == (224, 224, 3)
    resized_crop = image.crop((20, 10, 140, 160)).resize((224, 224), Image.BILINEAR)
    assert torch.equal(bundle["0/resized_crop"], torch.from_numpy(np.array(resized_crop)))
    to_tensor = bundle["0/to_tensor"]
    assert to_tensor.shape == (3, 32, 32)
    assert torch.equal(to_tensor, transforms.ToTensor()(transforms.CenterCrop(32)(image)))
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    assert torch.equal(bundle["0/normalize"], (to_tensor - mean) / std)
    assert torch.equal(bundle["0/val"], data_transforms["val"](image))
    torch.manual_seed(3)
    assert torch.equal(bundle["0/train"], data_transforms["train"](image))
