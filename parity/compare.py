"""The one comparison used by every parity test.

A mismatch message says what differs (quantity), where (strategy, epoch or step, key), how many
elements differ and by how much (greatest absolute and relative difference, and at which index).
Every comparison is also recorded for the report.
"""

from dataclasses import dataclass, field

import torch

from parity.tolerances import BIT_IDENTICAL, Tolerance, across_stacks, for_quantity


@dataclass
class Comparison:
    quantity: str
    where: dict
    tolerance: Tolerance
    numel: int = 0
    mismatched: int = 0
    max_abs: float = 0.0
    max_abs_index: tuple = ()
    max_rel: float = 0.0
    max_rel_index: tuple = ()
    first_index: tuple = ()  # the first mismatched element in row-major order
    ruby_at_max: float | None = None
    python_at_max: float | None = None
    problem: str | None = None  # a structural difference: missing key, shape, dtype
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return self.problem is None and self.mismatched == 0

    def location(self):
        return ", ".join(f"{k}={v}" for k, v in self.where.items() if v is not None)

    def message(self):
        return "; ".join([self._difference(), *self.notes])

    def _difference(self):
        head = f"{self.quantity} differs" + (f" [{self.location()}]" if self.where else "")
        if self.problem:
            return f"{head}: {self.problem}"
        share = 100.0 * self.mismatched / max(self.numel, 1)
        return (
            f"{head}: {self.mismatched} of {self.numel} elements mismatched ({share:.3g}%), "
            f"the first at index {_index(self.first_index)}; "
            f"greatest absolute difference {self.max_abs:.6g}{self.tolerance.units()} at index {_index(self.max_abs_index)} "
            f"(ruby {self.ruby_at_max!r}, python {self.python_at_max!r}); "
            f"greatest relative difference (where python is not 0) {self.max_rel:.6g} at index "
            f"{_index(self.max_rel_index)}; "
            f"allowed: {self.tolerance.describe()}"
        )


def _index(index):
    return "(" + ", ".join(str(i) for i in index) + ")" if index else "()"


def unravel(flat_index, shape):
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(index))


def measure(ruby, python, *, quantity, tolerance, **where):
    """Compare two tensors (or numbers); never raises for a difference, returns a Comparison."""
    result = Comparison(quantity=quantity, where=where, tolerance=tolerance)
    ruby, python = torch.as_tensor(ruby), torch.as_tensor(python)
    if ruby.shape != python.shape:
        result.problem = f"shape {tuple(ruby.shape)} in ruby, {tuple(python.shape)} in python"
        return result
    if ruby.dtype != python.dtype:
        result.problem = f"dtype {ruby.dtype} in ruby, {python.dtype} in python"
        return result
    result.numel = python.numel()
    if result.numel == 0:
        return result
    if _same_bytes(ruby, python):
        # the same bytes: no difference anywhere (NaNs included)
        result.max_abs_index = result.max_rel_index = unravel(0, python.shape)
        result.ruby_at_max = ruby.reshape(-1)[0].item()
        result.python_at_max = python.reshape(-1)[0].item()
        return result
    if tolerance.exact:
        # bit-identical: compare the bytes, so that -0.0/+0.0 and NaN payloads count too
        differs = _differing_bytes(ruby, python)
    else:
        differs = ~torch.isclose(ruby.double(), python.double(), atol=tolerance.atol, rtol=tolerance.rtol,
                                 equal_nan=True)
    result.mismatched = int(differs.sum())
    if result.mismatched:
        result.first_index = unravel(int(differs.reshape(-1).nonzero()[0]), python.shape)
    # (each step on a tensor of its own, in place where it made that tensor: a diagnosis compares hundreds of MB)
    python_double = python.double()
    diff = torch.sub(ruby.double(), python_double).abs_().view(-1)
    diff.masked_fill_(torch.isnan(diff), float("inf"))
    # relative to python's value, where that is not zero (a ReLU's zeros would make it meaningless)
    magnitude = python_double.abs().view(-1)
    positive = magnitude > 0
    rel = diff / magnitude.clamp_min_(torch.finfo(torch.float64).tiny)
    rel.masked_fill_(~positive, 0.0)
    abs_at = int(diff.argmax())
    rel_at = int(rel.argmax())
    result.max_abs, result.max_rel = float(diff[abs_at]), float(rel[rel_at])
    result.max_abs_index = unravel(abs_at, python.shape)
    result.max_rel_index = unravel(rel_at, python.shape)
    result.ruby_at_max = ruby.reshape(-1)[abs_at].item()
    result.python_at_max = python.reshape(-1)[abs_at].item()
    return result


INTEGER_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _same_bytes(ruby, python):
    """Whether two tensors of one dtype and shape hold the same bytes, compared as integers of their elements' size:
    torch.equal on their uint8 views took four times as long (a recorded tutorial run's 340 MB: 0.25 CPU-s a diagnosis)."""
    integer = INTEGER_OF_SIZE.get(python.element_size())
    if integer is None:
        return torch.equal(_bytes(ruby), _bytes(python))
    return torch.equal(ruby.contiguous().view(integer), python.contiguous().view(integer))


def _differing_bytes(ruby, python):
    """Which elements' bytes differ (as integers of their size, as _same_bytes): a bool tensor, one value an element."""
    integer = INTEGER_OF_SIZE.get(python.element_size())
    if integer is None:
        same = _bytes(ruby).view(python.numel(), -1) == _bytes(python).view(python.numel(), -1)
        return ~same.all(dim=1)
    return ruby.contiguous().view(integer) != python.contiguous().view(integer)


def _bytes(tensor):
    """The tensor's bytes in row-major order, as a flat uint8 tensor."""
    return tensor.contiguous().view(-1).view(torch.uint8)


def _key_by_key(ruby, python, quantity, where, tolerance, compare_key):
    """compare_key(key) for every key of `python`, and a Comparison naming each key only one side has."""
    results = []
    for key in python:
        if key in ruby:
            results.append(compare_key(key))
        else:
            missing = Comparison(quantity=quantity, where={**where, "key": key}, tolerance=tolerance)
            missing.problem = "key missing on the ruby side"
            results.append(missing)
    for key in ruby:
        if key not in python:
            extra = Comparison(quantity=quantity, where={**where, "key": key}, tolerance=tolerance)
            extra.problem = "key present only on the ruby side"
            results.append(extra)
    return results


def measure_dict(ruby, python, *, quantity, tolerance, **where):
    """Compare two name -> tensor mappings key by key; one Comparison per key, missing keys included."""
    return _key_by_key(ruby, python, quantity, where, tolerance, lambda key: measure(
        ruby[key], python[key], quantity=quantity, tolerance=tolerance, **where, key=key))


def judge(ruby, python, floor, *, kind, same_stack, quantity, **where):
    """measure() at the tolerance for `kind`: bit-identical on one stack; across stacks, within
    FLOOR_MULTIPLE times what the reference's floor run (`floor`, or None) differs from the reference."""
    if same_stack:
        return measure(ruby, python, quantity=quantity, tolerance=for_quantity(kind, same_stack), **where)
    spread = None
    if floor is not None:
        spread = measure(floor, python, quantity=quantity, tolerance=BIT_IDENTICAL)
        spread = None if spread.problem else spread.max_abs
    result = measure(ruby, python, quantity=quantity, tolerance=across_stacks(kind, spread), **where)
    if spread is not None:
        result.notes.append(f"floor (reference vs its run on the port's stack) {spread:.3g}{result.tolerance.units()}, "
                            f"port {result.max_abs:.3g}{result.tolerance.units()}")
    return result


def judge_dict(ruby, python, floor, *, kind, same_stack, quantity, **where):
    """judge() key by key of two name -> tensor mappings (and the floor run's, or None), missing keys included."""
    return _key_by_key(ruby, python, quantity, where, BIT_IDENTICAL, lambda key: judge(
        ruby[key], python[key], None if floor is None else floor.get(key), kind=kind, same_stack=same_stack,
        quantity=quantity, **where, key=key))


class ParityError(AssertionError):
    pass


def check(comparisons, recorder=None):
    """Record the comparisons and fail with every mismatch, first (in the given order) first."""
    if not isinstance(comparisons, list):
        comparisons = [comparisons]
    if recorder is not None:
        recorder.extend(comparisons)
    failures = [c for c in comparisons if not c.passed]
    if failures:
        shown = failures[:10]
        more = f"\n… and {len(failures) - len(shown)} more" if len(failures) > len(shown) else ""
        raise ParityError("\n".join(c.message() for c in shown) + more)
    return comparisons
