"""Where the two stacks really differ and the port cannot make them agree.

Each one is a strict expected failure: its test asserts agreement and must keep failing (an
unexpected pass fails the suite, so a fix upstream is noticed and the entry removed). The measured
size of each is recorded during the run and listed in parity/report/.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDivergence:
    name: str
    reason: str


RESAMPLING = KnownDivergence(
    name="resampling in Resize and RandomResizedCrop",
    reason=(
        "Python resizes with PIL's antialiased bilinear filter, Ruby with libvips' thumbnail, the only "
        "resampling torchvision-ruby 0.3.0's F.resize has (PIL's filter would have to be re-implemented "
        "in the port); decoding, cropping, "
        "flipping and Normalize agree exactly, so only resampled pixels differ. The replay feeds both sides "
        "the same tensors, so this touches only each side's own pipeline (free-running training)."
    ),
)

MEASURED = []  # filled by the tests: {"name", "measured", "reason"}


def record(divergence, measured):
    MEASURED.append({"name": divergence.name, "measured": measured, "reason": divergence.reason})
