"""What the training loop reports to whoever watches it: the trainer watches nothing, the replay and
`train.py --record` record every step (the Ruby twin is ruby_port/lib/hymenoptera/observer.rb).

The loop calls `after_step` after each optimizer step (the gradients of that step are still in
`.grad`), `after_eval_batch` with each evaluation batch's outputs, and `after_epoch` after the
epoch's validation.

NO_OBSERVER needs no torch (train.py's options are checked before LibTorch loads); the recorders import
what they write with.
"""


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


def training_state(model, optimizer, loss):
    """What a step can change, which the next step starts from: each state-dict entry but the frozen
    parameters ("state/NAME"), each momentum buffer ("momentum/NAME"), and the step's loss ("loss")."""
    parameters = dict(model.named_parameters())
    state = {f"state/{name}": tensor for name, tensor in model.state_dict().items()
             if name not in parameters or parameters[name].requires_grad}
    state.update({f"momentum/{name}": buffer for name, buffer in momentum_buffers(model, optimizer).items()})
    state["loss"] = loss.detach()
    return state


def load_training_state(model, optimizer, state):
    """Continue from `state` (training_state's layout): its state-dict entries and SGD's momentum buffers."""
    entries = model.state_dict()
    entries.update({name[len("state/"):]: tensor for name, tensor in state.items() if name.startswith("state/")})
    model.load_state_dict(entries)
    parameters = dict(model.named_parameters())
    for name, buffer in state.items():
        if name.startswith("momentum/"):
            optimizer.state[parameters[name[len("momentum/"):]]]["momentum_buffer"] = buffer.clone()


class Recorder(Observer):
    """Records, for bundles in fixtures/README.md's run directory layout: the loss of every step
    (`step_losses`), the first batch (`first_batch`), the gradients after the first backward
    (`grads_step1`), the momentum buffers after the first step (`momentum_step1`) and at the end
    (`momentum_last`); given `states_to`, the state dict after each epoch (`state_epoch_K`) goes there
    as the epoch ends; given `steps_to`, the training state after every step (`after_N`, N counting
    steps from 0 across epochs) goes there. Given `resync_from` (another run's `steps_to`), every step
    continues from that run's state after the same step instead of its own: each step's error is
    then its own, not the drift of the steps before."""

    def __init__(self, states_to=None, steps_to=None, resync_from=None):
        self.states_to, self.steps_to, self.resync_from = states_to, steps_to, resync_from
        self.step_losses = [[]]
        self.first = None
        self.momentum_last = {}
        self.steps = 0

    def after_step(self, model, optimizer, inputs, labels, loss):
        from reference_py.tensor_io import read_bundle, write_bundle

        self.step_losses[-1].append(loss.item())
        if self.first is None:
            self.first = {
                "first_batch": {"inputs": inputs.clone(), "labels": labels.clone()},
                "grads_step1": {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad},
                "momentum_step1": momentum_buffers(model, optimizer),
            }
        name = f"after_{self.steps}"
        where = {"epoch": len(self.step_losses) - 1, "step": len(self.step_losses[-1]) - 1}
        if self.steps_to is not None:
            write_bundle(self.steps_to / name, training_state(model, optimizer, loss), meta=where)
        if self.resync_from is not None:
            load_training_state(model, optimizer, read_bundle(self.resync_from / name))
        self.steps += 1

    def after_epoch(self, epoch, model, optimizer):
        from reference_py.tensor_io import write_bundle

        self.step_losses.append([])
        self.momentum_last = momentum_buffers(model, optimizer)
        if self.states_to is not None:
            write_bundle(self.states_to / f"state_epoch_{epoch}", model.state_dict())

    def write(self, out):
        import torch

        from reference_py.tensor_io import write_bundle

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
