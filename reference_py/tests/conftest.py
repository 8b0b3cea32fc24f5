"""Shared set-up: a tiny generated image set and stand-in weights, made once per session."""

import pytest

from reference_py import standin_data
from reference_py.pretrained import standin_state_dict, write_net

TINY_COUNTS = {"train": 4, "val": 4}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """4 train and 4 val images per class (among them the L, CMYK and P ones)."""
    return standin_data.generate(tmp_path_factory.mktemp("data") / "tiny", seed=1, counts=TINY_COUNTS)


@pytest.fixture(scope="session")
def net_pth(tmp_path_factory):
    """Stand-in weights written as pretrained.py writes net.pth (without looking at the hub cache)."""
    path = tmp_path_factory.mktemp("weights") / "net.pth"
    write_net(path, standin_state_dict(seed=3), "stand-in", "seed 3")
    return path
