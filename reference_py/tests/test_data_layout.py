"""The data dir's checks that run before LibTorch loads (data_layout.py; the twin: ruby_port/test/data_layout_test.rb)."""

import subprocess
import sys

from torchvision.datasets import folder

from reference_py import ROOT
from reference_py.data_layout import IMG_EXTENSIONS

# What the trainers use before LibTorch loads: importing them must not import torch or torchvision.
BEFORE_LIBTORCH = ("reference_py.data_layout", "reference_py.weights", "reference_py.train")


def test_the_image_extensions_are_torchvisions():
    assert IMG_EXTENSIONS == folder.IMG_EXTENSIONS


def test_what_the_trainers_check_first_loads_without_torch():
    code = (f"import sys\nfor name in {BEFORE_LIBTORCH!r}:\n    __import__(name)\n"
            f"print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                               timeout=120)
    assert completed.stdout.strip() == "[]", f"imported with {', '.join(BEFORE_LIBTORCH)}: {completed.stdout}"
