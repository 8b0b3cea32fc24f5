"""Every tolerance of the parity suite, in one place.

When both sides report the same LibTorch library and thread count they run the very same kernels in
the same order, and the expectation is bit-identical. Otherwise (another LibTorch build, another
thread count) reductions may be ordered differently; these are the bounds then, per quantity.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    exact: bool = False
    atol: float = 0.0
    rtol: float = 0.0

    def describe(self):
        return "bit-identical" if self.exact else f"atol {self.atol:g}, rtol {self.rtol:g}"


BIT_IDENTICAL = Tolerance(exact=True)

# Used only when the two sides' LibTorch or thread count differ. float32 kernels with another
# reduction order differ by a few ulps per op; the bounds grow with the depth of the computation.
ACROSS_STACKS = {
    "logits": Tolerance(atol=1e-4, rtol=1e-4),
    "trace": Tolerance(atol=1e-4, rtol=1e-4),
    "loss": Tolerance(atol=1e-5, rtol=1e-5),
    "gradients": Tolerance(atol=1e-5, rtol=1e-4),
    "state": Tolerance(atol=1e-5, rtol=1e-4),
    "momentum": Tolerance(atol=1e-5, rtol=1e-4),
    "metrics": Tolerance(atol=1e-6, rtol=1e-6),
    "lr": Tolerance(atol=0.0, rtol=1e-12),
    "inputs": Tolerance(atol=1e-6),  # elementwise ToTensor and Normalize of the same pixels
    "counts": BIT_IDENTICAL,
    "predictions": BIT_IDENTICAL,
}

# Preprocessing runs through different image libraries (PIL in Python, libvips in Ruby), so
# agreement is measured in pixel levels (1 level = 1/255 of ToTensor's range), not bit for bit.
PIXEL_LEVEL = 1.0 / 255.0


def for_quantity(kind, same_stack):
    """The tolerance for a kind of quantity: bit-identical on the same stack."""
    return BIT_IDENTICAL if same_stack else ACROSS_STACKS[kind]
