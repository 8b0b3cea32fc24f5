"""The floor: LibTorch's own time for the benchmarked step, measured with torch.profiler from Python.

    python bench/kernel_floor.py [--warmup 3] [--iters 10] [--modes finetune,feature_extractor,eval]

For each profiled iteration, the floor is the sum of the self CPU time of every aten:: op: the time
spent inside LibTorch's operators (kernels and their dispatch), excluding the interpreter, the autograd
engine's bookkeeping and the optimizer's loop. It is split by phase (zero_grad, forward, loss, backward,
step) through record_function markers. The profiler adds a little time to each op, so the floor is a
slight overestimate. Prints one JSON object, in ms, like bench/train_step.py.
"""

import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for bench and reference_py

from torch.autograd.profiler import record_function  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench import train_step, workload  # noqa: E402

PHASE_PREFIX = "phase::"


class PhaseMarkers:
    """A mark(phase) callback for workload.run that wraps each phase in record_function("phase::NAME")."""

    def __init__(self, phases):
        self.pending = list(phases)
        self.current = None
        self.open_next()

    def open_next(self):
        if self.pending:
            self.current = record_function(PHASE_PREFIX + self.pending.pop(0))
            self.current.__enter__()

    def __call__(self, _phase):
        self.current.__exit__(None, None, None)
        self.open_next()


def phase_of(event):
    while event is not None and not event.name.startswith(PHASE_PREFIX):
        event = event.cpu_parent
    return event.name[len(PHASE_PREFIX):] if event is not None else "other"


def kernel_ms_by_phase(events, phases):
    """Sum of the self CPU time of aten:: ops, per phase, in ms ("other": ops outside any phase, such as
    the torch.zeros that each record_function marker itself makes; not part of the floor)."""
    totals = dict.fromkeys(phases, 0.0)
    for event in events:
        if event.name.startswith("aten::"):
            phase = phase_of(event)
            totals[phase] = totals.get(phase, 0.0) + event.self_cpu_time_total / 1e3
    return totals


def profile_mode(mode, warmup, iters):
    step = workload.step_fn(mode)
    for _ in range(warmup):
        step(lambda phase: None)
    phases = workload.phases(mode)
    totals, by_phase, profiled = [], {phase: [] for phase in phases}, []
    for _ in range(iters):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            step(PhaseMarkers(phases))
            profiled.append((time.perf_counter() - start) * 1e3)
        kernel = kernel_ms_by_phase(prof.events(), phases)
        totals.append(sum(kernel[phase] for phase in phases))
        for phase in phases:
            by_phase[phase].append(kernel[phase])
    return {"total_ms": totals, "phases_ms": by_phase, "profiled_step_ms": profiled}


def main(argv=None):
    train_step.main(argv, measure=profile_mode, side="floor", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
