"""The known deviations' signatures (parity/deviations.py), each on values made here: what matches, what
does not, and that a file the Ruby run loaded is never blamed."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from parity import deviations


def test_every_file_a_signature_names_is_a_fix_of_the_room():
    named = set(re.findall(r'"((?:torch|torchvision)/[\w/]+\.rb)"', (deviations.FIXES_ROOM.parents[2] / "parity" /
                                                                       "deviations.py").read_text()))
    fixes = set(deviations.fix_files())
    assert named and named <= fixes, named - fixes
    for file in fixes:
        assert deviations.fix_header(file).get("Bug"), f"{file}: no Bug: line in its header"


@pytest.mark.parametrize("error, file", [
    ({"class": "TypeError", "message": "no _dump_data is defined for class Torch::NN::Parameter"}, "torch/tensor/marshal.rb"),
    ({"class": "ArgumentError", "message": "unknown keyword: :num_workers"}, "torch/utils/data/data_loader_workers.rb"),
    ({"class": "NameError", "message": "uninitialized constant Torch::Utils::Data::RandomSampler"},
     "torch/utils/data/random_sampler.rb"),
    ({"class": "RuntimeError", "message": "output with shape [1, 224, 224] doesn't match the broadcast shape [3, 224, 224]"},
     "torchvision/datasets/image_folder.rb"),
    ({"class": "RuntimeError", "message": "something else"}, None),
])
def test_the_errors_a_plain_port_stops_with(error, file):
    match = deviations.stopped(error, fixes=[])
    assert (match.file if match else None) == file
    if file:
        assert deviations.stopped(error, fixes=[file]) is None


def picture(height, width):
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_center_crop_rounding_half_up_on_its_own_input():
    image = picture(9, 9)  # (9 - 4) / 2 = 2.5: torchvision crops at 2 (round half to even), half up at 3
    up, even = image[3:7, 3:7], image[2:6, 2:6]
    match = deviations.transform("CenterCrop", None, even, image, up, fixes=[])
    assert match.file == "torchvision/transforms/center_crop.rb" and match.independent
    assert deviations.transform("CenterCrop", None, even, image, even, fixes=[]) is None
    assert deviations.transform("CenterCrop", None, even, image, up, fixes=["torchvision/transforms/center_crop.rb"]) is None


def test_resize_size_and_filter_on_its_own_input():
    image = picture(30, 20)
    wanted = (36, 24)  # Resize(24): the short side 24, the long int(24 * 30 / 20)
    pil = torch.from_numpy(np.asarray(Image.fromarray(image.numpy()).resize((24, 36), Image.Resampling.BILINEAR)).copy())
    python_out = pil
    assert deviations.transform("Resize", None, python_out, image, pil, fixes=[]) is None
    other = torch.zeros(35, 23, 3, dtype=torch.uint8)
    assert deviations.transform("Resize", None, python_out, image, other, fixes=[]).file == "torchvision/transforms/resize.rb"
    blurred = pil.clone()
    blurred[0, 0, 0] ^= 1
    assert tuple(blurred.shape[:2]) == wanted
    assert deviations.transform("Resize", None, python_out, image, blurred, fixes=[]).file == "torchvision/transforms/functional.rb"


def test_a_flip_decided_otherwise():
    image = picture(4, 5)
    match = deviations.transform("RandomHorizontalFlip", image, image, image, image.flip(1), fixes=[])
    assert match.file == "torchvision/transforms/random_horizontal_flip.rb"
    assert deviations.transform("RandomHorizontalFlip", image, image, image, image + 1, fixes=[]) is None


def test_step_lr_in_closed_form_is_a_few_ulps():
    chained, closed = 0.01 * 0.1 * 0.1, 0.01 * 0.1 ** 2
    assert chained != closed
    assert deviations.learning_rate("StepLR", closed, chained, fixes=[]).file == "torch/optim/lr_scheduler/step_lr.rb"
    assert deviations.learning_rate("StepLR", 0.002, 0.001, fixes=[]) is None
    assert deviations.learning_rate("CosineAnnealingLR", closed, chained, fixes=[]) is None


def test_batch_norm_counts_left_as_they_were():
    before = {"bn.num_batches_tracked": torch.tensor(2)}
    assert deviations.batch_counts(["bn.num_batches_tracked"], before, {"bn.num_batches_tracked": torch.tensor(2)},
                                   fixes=[]).file == "torch/nn/batch_norm2d.rb"
    assert deviations.batch_counts(["bn.num_batches_tracked"], before, {"bn.num_batches_tracked": torch.tensor(4)},
                                   fixes=[]) is None
    assert deviations.batch_counts(["bn.running_mean"], before, before, fixes=[]) is None
