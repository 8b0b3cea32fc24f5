"""torch.rb's Torch.save with pytorch_parity (ruby_port/lib/pytorch_parity/torch/save.rb) against
torch.save: the same object saved by each side (parity/save_side.rb, its Ruby twin) makes the same
bytes, the zip's records, their order and alignment, and the pickle, and Python reads Ruby's files,
a state dict with torch.load(weights_only=True).

Where LibTorch's unpickler (torch.rb's Torch.load) reads less than pickle writes, the bytes differ on
purpose and only the loaded objects are compared: a dict or a list of one item, an integer beyond 32 bits.
"""

import subprocess

import pytest
import torch

from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command

CHECKPOINT = ROOT / "net.pth"
DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
          torch.float32, torch.float64, torch.complex64, torch.bool]


def kinds():
    """save_side.rb's kinds(), in Python."""
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    return {"dtypes": {str(dtype).removeprefix("torch."): (torch.arange(6) % 3).to(dtype) for dtype in DTYPES},
            "scalar": torch.tensor(5), "empty": torch.empty(0, 2), "grad": torch.ones(2, requires_grad=True),
            "base": base, "transposed": base.t(), "same": base, "row": base[1],
            "ints": [0, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1],
            "floats": [2.5, -0.0, 1e300], "strings": ["", "é", "ants"], "none": None, "yes": True, "no": False,
            "thousand": {f"k{i}": i for i in range(1000)}, "more": {i: f"v{i}" for i in range(1001)},
            "list": list(range(1001)), "nested": {"a": [base, {"b": 2, "c": [3, 4]}], 7: []}}


def deviations():
    """save_side.rb's deviations(), in Python."""
    return {"one": {"x": 1}, "single": [torch.ones(1)], "big": 2**40, "negative": -2**40}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(Python's folder, Ruby's folder), each with net.pth, kinds.pth and deviations.pth."""
    python, ruby = tmp_path_factory.mktemp("python"), tmp_path_factory.mktemp("ruby")
    command = Command("Ruby", ["ruby", str(ROOT / "parity" / "save_side.rb"), str(RUBY_PORT), str(CHECKPOINT), str(ruby)])
    result = subprocess.run(command.argv, cwd=ROOT, env=command.env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"the Ruby side failed (exit {result.returncode}):\n{result.stderr[-8000:]}"
    torch.save(dict(torch.load(CHECKPOINT, weights_only=True)), python / "net.pth")
    torch.save(kinds(), python / "kinds.pth")
    torch.save(deviations(), python / "deviations.pth")
    return python, ruby


def first_difference(python, ruby):
    at = next((i for i, (p, r) in enumerate(zip(python, ruby)) if p != r), min(len(python), len(ruby)))
    return (f"{len(ruby)} bytes against Python's {len(python)}; first difference at byte {at}: "
            f"Ruby {ruby[max(0, at - 16):at + 16]!r}, Python {python[max(0, at - 16):at + 16]!r}")


def assert_same(python, ruby, where="loaded"):
    """Equal objects, tensors equal bit for bit with the same dtype, shape, stride and requires_grad."""
    assert type(python) is type(ruby), f"{where}: {type(ruby).__name__}, Python {type(python).__name__}"
    if isinstance(python, torch.Tensor):
        assert (ruby.dtype, ruby.shape, ruby.stride(), ruby.requires_grad) == \
            (python.dtype, python.shape, python.stride(), python.requires_grad), where
        assert torch.equal(ruby.view(torch.uint8) if ruby.dtype == torch.bool else ruby,
                           python.view(torch.uint8) if python.dtype == torch.bool else python), f"{where}: other values"
    elif isinstance(python, dict):
        assert list(ruby) == list(python), f"{where}: other keys"
        for key in python:
            assert_same(python[key], ruby[key], f"{where}[{key!r}]")
    elif isinstance(python, list):
        assert len(ruby) == len(python), f"{where}: {len(ruby)} items, Python {len(python)}"
        for index, (p, r) in enumerate(zip(python, ruby)):
            assert_same(p, r, f"{where}[{index}]")
    else:
        assert ruby == python, where


def test_a_state_dict_loads_with_weights_only_and_is_torch_saves_bytes(saved):
    python, ruby = saved
    assert_same(torch.load(CHECKPOINT, weights_only=True), torch.load(ruby / "net.pth", weights_only=True))
    written, expected = (ruby / "net.pth").read_bytes(), (python / "net.pth").read_bytes()
    assert written == expected, first_difference(expected, written)


@pytest.mark.parametrize("name", ["kinds", "deviations"])
def test_every_kind_loads_as_python_saved_it(saved, name):
    python, ruby = saved
    assert_same(torch.load(python / f"{name}.pth"), torch.load(ruby / f"{name}.pth"))


def test_every_kind_is_torch_saves_bytes(saved):
    python, ruby = saved
    written, expected = (ruby / "kinds.pth").read_bytes(), (python / "kinds.pth").read_bytes()
    assert written == expected, first_difference(expected, written)


def test_views_come_back_sharing_their_storage(saved):
    _, ruby = saved
    loaded = torch.load(ruby / "kinds.pth")
    pointers = {loaded[key].storage().data_ptr() for key in ("base", "transposed", "same", "row")}
    assert len(pointers) == 1, "the views of one tensor were saved as storages of their own"
