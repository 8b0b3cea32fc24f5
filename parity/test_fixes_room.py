"""The Python side of the fixes room's reproductions: each fix of torch.rb or torchvision-ruby
(ruby_port/lib/pytorch_parity/) states in its header a few lines of Ruby, what they give on the
installed gems, and the same in Python ("In Python:") with its value ("Python gives:"). The Ruby
canaries (ruby_port/test/canaries/) run the Ruby; this runs the Python, so that what the README's
table says PyTorch and torchvision give is what they give."""

import ast
import copy
import re
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.transforms import functional as F
from torchvision.utils import save_image

from parity.settings import RUBY_PORT

ROOM = RUBY_PORT / "lib" / "pytorch_parity"
FIELD = re.compile(r"^# (Python gives|In Python): (.*)$", re.MULTILINE)


def python_reproductions():
    """(fix, its Python statements, the value the header says they give), for every fix that has both."""
    cases = []
    for path in sorted(ROOM.rglob("*.rb")):
        fields = dict(FIELD.findall(path.read_text().split("\nmodule ", 1)[0]))
        if "In Python" in fields:
            cases.append((str(path.relative_to(ROOM)), fields["In Python"], fields["Python gives"]))
    return cases


@pytest.mark.parametrize("fix,statements,gives", python_reproductions(), ids=lambda value: str(value))
def test_the_python_reproduction_gives_what_the_header_says(fix, statements, gives, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "root" / "ants").mkdir(parents=True)
    Image.new("L", (2, 2)).save(tmp_path / "root" / "ants" / "gray.png")
    scope = dict(copy=copy, np=np, torch=torch, torchvision=torchvision, Image=Image, DataLoader=DataLoader,
                 transforms=transforms, F=F, save_image=save_image, root=str(tmp_path / "root"))
    *lines, last = statements.split("; ")
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StepLR's: step() before optimizer.step()
        for line in lines:
            exec(line, scope)  # noqa: S102 (the header's own reproduction)
        value = eval(last, scope)  # noqa: S307
    assert value == ast.literal_eval(gives), (
        f"ruby_port/lib/pytorch_parity/{fix}: in Python `{statements}` gives {value!r}, its header says {gives}")
