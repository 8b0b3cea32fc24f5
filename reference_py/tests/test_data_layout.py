"""The data dir's checks that run before LibTorch loads (data_layout.py; the twin: ruby_port/test/data_layout_test.rb)."""

from torchvision.datasets import folder

from reference_py.data_layout import IMG_EXTENSIONS
from reference_py.tests.helpers import torch_imported_by

# What the trainers use before LibTorch loads: importing them must not import torch or torchvision.
BEFORE_LIBTORCH = ("reference_py.data_layout", "reference_py.weights", "reference_py.train")


def test_the_image_extensions_are_torchvisions():
    assert IMG_EXTENSIONS == folder.IMG_EXTENSIONS


def test_what_the_trainers_check_first_loads_without_torch():
    assert torch_imported_by(*BEFORE_LIBTORCH) == []
