"""The first parity check: one ResNet-18 state dict, one batch, eval-mode logits in both languages.

Python writes the weights as net.pth (plain tensors, the way pretrained.py does) and the batch as a
bundle; Ruby loads them with Torch.load and TorchVision::Models::ResNet18 and writes its logits.
"""

import torch
import torchvision

from parity.compare import check, measure
from parity.sides import SIDE_THREADS, ruby, start_served
from parity.tolerances import BIT_IDENTICAL
from reference_py import runtime_info
from reference_py.tensor_io import read_bundle, write_bundle


def seeded_resnet18():
    torch.manual_seed(1234)
    model = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def test_eval_logits_are_bit_identical(tmp_path, sides, recorder):
    model = seeded_resnet18()
    torch.save({name: tensor for name, tensor in model.state_dict().items()}, tmp_path / "net.pth")
    images = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(99))
    write_bundle(tmp_path / "batch", {"images": images})

    # forked by the session's Ruby server (parity/sides.py's session_server), which the session starts anyway: a process
    # of its own paid the bundle's and LibTorch's start and Ruby's teardown
    start_served(ruby("logits", tmp_path / "net.pth", tmp_path / "batch", tmp_path / "logits")).wait()
    ruby_logits, ruby_runtime = read_bundle(tmp_path / "logits", with_meta=True)

    torch.set_num_threads(SIDE_THREADS)  # this process is the Python side here, at the sides' thread count
    python_runtime = runtime_info.describe(torch.get_num_threads())
    with torch.no_grad():
        python_logits = model(images)
    sides.setdefault("python", python_runtime)
    sides.setdefault("ruby", ruby_runtime)
    assert ruby_runtime["threads"] == python_runtime["threads"], (
        f"thread counts differ: ruby {ruby_runtime['threads']}, python {python_runtime['threads']}")
    assert ruby_runtime["libtorch_library"] == python_runtime["libtorch_library"], (
        f"the two sides load different LibTorch files: ruby {ruby_runtime['libtorch_library']}, "
        f"python {python_runtime['libtorch_library']}")
    check(measure(ruby_logits["logits"], python_logits, quantity="eval logits", tolerance=BIT_IDENTICAL,
                  model="resnet18 (seeded)", batch=0), recorder)
