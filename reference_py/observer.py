"""What the training loop reports to whoever watches it: the trainer watches nothing, the replay and
`train.py --record` record every step (the Ruby twin is ruby_port/lib/hymenoptera/observer.rb).

The loop calls `after_step` after each optimizer step (the gradients of that step are still in
`.grad`), `after_eval_batch` with each evaluation batch's outputs, and `after_epoch` after the
epoch's validation.
"""

import torch

from reference_py.tensor_io import write_bundle


class Observer:
    """Watches nothing: what train.py's users get."""

    def after_step(self, model, optimizer, inputs, labels, loss):
        pass

    def after_eval_batch(self, outputs):
        pass

    def after_epoch(self, epoch, model, optimizer):
        pass


NO_OBSERVER = Observer()


def momentum_buffers(model, optimizer):
    """SGD's momentum buffer of every parameter that has one, by parameter name, copied."""
    return {name: optimizer.state[p]["momentum_buffer"].clone()
            for name, p in model.named_parameters() if "momentum_buffer" in optimizer.state.get(p, {})}


class Recorder(Observer):
    """Records, for bundles in fixtures/README.md's run directory layout: the loss of every step
    (`step_losses`), the first batch (`first_batch`), the gradients after the first backward
    (`grads_step1`), the momentum buffers after the first step (`momentum_step1`) and at the end
    (`momentum_last`); given `states_to`, the state dict after each epoch (`state_epoch_K`) goes there
    as the epoch ends."""

    def __init__(self, states_to=None):
        self.states_to = states_to
        self.step_losses = [[]]
        self.first = None
        self.momentum_last = {}

    def after_step(self, model, optimizer, inputs, labels, loss):
        self.step_losses[-1].append(loss.item())
        if self.first is None:
            self.first = {
                "first_batch": {"inputs": inputs.clone(), "labels": labels.clone()},
                "grads_step1": {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad},
                "momentum_step1": momentum_buffers(model, optimizer),
            }

    def after_epoch(self, epoch, model, optimizer):
        self.step_losses.append([])
        self.momentum_last = momentum_buffers(model, optimizer)
        if self.states_to is not None:
            write_bundle(self.states_to / f"state_epoch_{epoch}", model.state_dict())

    def write(self, out):
        for name, tensors in (self.first or {}).items():
            write_bundle(out / name, tensors)
        write_bundle(out / "momentum_last", self.momentum_last)
        write_bundle(out / "step_losses",
                     {"step_losses": torch.tensor(self.step_losses[:-1], dtype=torch.float32)})


class OutputsRecorder(Observer):
    """Keeps every evaluation batch's outputs (the replay's initial logits)."""

    def __init__(self):
        self.outputs = []

    def after_eval_batch(self, outputs):
        self.outputs.append(outputs)
