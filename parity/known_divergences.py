"""Where the two stacks really differ and the port cannot make them agree.

Each one is a strict expected failure: its test asserts agreement and must keep failing (an
unexpected pass fails the suite, so a fix upstream is noticed and the entry removed). The measured
size of each is recorded during the run and listed in parity/report/.

None at present: resampling was one (libvips' filter against PIL's) until the port took up Pillow's
bilinear arithmetic (ruby_port/lib/pytorch_parity/torchvision/transforms/resample.rb);
parity/test_preprocessing.py now holds every transform to bit-identity. The zoo (parity/test_zoo.py) found none either: the 18 architectures
torchvision-ruby shares with torchvision agree bit for bit on every quantity once the port's VGG counts
BatchNorm batches (ruby_port/lib/pytorch_parity/torch/nn/batch_norm2d.rb).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDivergence:
    name: str
    reason: str


MEASURED = []  # filled by the tests: {"name", "measured", "reason"}


def record(divergence, measured):
    MEASURED.append({"name": divergence.name, "measured": measured, "reason": divergence.reason})
