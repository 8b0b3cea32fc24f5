"""Shared set-up: a tiny generated image set and stand-in weights, made once per session."""

import signal

import pytest

from reference_py import standin_data
from reference_py.export_fixtures import ensure_fixtures
from reference_py.pretrained import standin_state_dict, write_net

TINY_COUNTS = {"train": 4, "val": 4}


@pytest.fixture
def sigterm_exits():
    """SIGTERM ends the test with SystemExit, as it ends a run (test_atomic's and test_lock's signals)."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(SystemExit(143)))
    yield
    signal.signal(signal.SIGTERM, previous)


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


SMALL = {"seed": 0, "eval_per_class": 2, "replay_per_class": 3}  # 4 eval images; 6 replay images: batches of 4, 2


@pytest.fixture(scope="session")
def small_fixtures(tiny_data, net_pth, tmp_path_factory):
    """Fixtures of every strategy from the tiny set: 6 eval images, 6 replay images."""
    out = tmp_path_factory.mktemp("fixtures") / "fixtures"
    ensure_fixtures(out, data_dir=tiny_data, weights_path=net_pth, **SMALL)
    return out
