"""Record what a PyTorch program computes, without editing it:

    python -m parity.record --out DIR [--seed N] SCRIPT.py [args]

runs SCRIPT.py as `python SCRIPT.py args` would (runpy; --seed N: torch.manual_seed(N) first) and writes
the run into DIR in the run format (parity/RUN_FORMAT.md), as it goes: what a run that crashes saw stays,
with the error. `python -m parity.diagnose PY_RUN RB_RUN` compares it with the Ruby twin's run
(`PYTORCH_PARITY_RECORD=DIR bundle exec ruby -rpytorch_parity/record PORT.rb`), whose recorder,
ruby_port/lib/pytorch_parity/record/, records the same things at the same moments.

The recorder only watches: nn.Module.__call__, Tensor.backward, each optimizer's and scheduler's step, the
DataLoader's iterators (_BaseDataLoaderIter: where a pass starts, where the sampler's indices are drawn,
where a batch is delivered) and transforms.Compose, each wrapped so that what the program computes is
unchanged.
"""

import argparse
import functools
import os
import platform
import runpy
import sys
import time
import traceback
import weakref
from dataclasses import dataclass

from parity.run_format import DTYPES, Bytes, RecordError, RunWriter

# NumPy and torch are imported where they are used: the command claims its folder first, and a folder it refuses
# costs no LibTorch start (2 CPU-s).

SEED_MAX = 2**64 - 1


# --- values ---

def tensor_bytes(tensor):
    import torch

    tensor = tensor.detach().cpu().contiguous()
    # the tensor's own memory, which the writer writes from: a copy (tobytes) was a fault per page of every tensor
    data = memoryview(tensor.reshape(-1).view(torch.uint8).numpy()) if tensor.numel() else b""
    return Bytes(str(tensor.dtype).removeprefix("torch."), list(tensor.shape), data, "tensor")


def array_bytes(array, form):
    import numpy as np

    array = np.ascontiguousarray(array)
    if array.dtype.name not in DTYPES:
        array = array.astype(np.float64)
    return Bytes(array.dtype.name, list(array.shape), array.tobytes(), form)


def bytes_of(value):
    """The value's Bytes (a PIL image as uint8 [height, width, bands], as pytorch_parity/record stores a
    libvips image), or None when it is not an array of numbers."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return tensor_bytes(value)
    if isinstance(value, np.ndarray):
        return array_bytes(value, "array")
    if type(value).__module__.startswith("PIL."):
        array = np.asarray(value)
        return array_bytes(array[:, :, None] if array.ndim == 2 else array, "image")
    return None


def flatten(value, name, arrays=None, values=None):
    """(arrays, values): NAME.0 / NAME.key for what containers hold, as pytorch_parity/record flattens."""
    arrays = {} if arrays is None else arrays
    values = {} if values is None else values
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            flatten(item, f"{name}.{index}", arrays, values)
    elif isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{name}.{key}", arrays, values)
    elif value is None or isinstance(value, (bool, int, float, str)):
        values[name] = value
    else:
        array = bytes_of(value)
        if array is not None:
            arrays[name] = array
        else:
            values[name] = f"{type(value).__name__} (not recorded)"
    return arrays, values


def plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(item, (int, float)) for item in value)


# --- what the run's process runs on ---

def describe_stack():
    import torch

    from reference_py.runtime_info import libtorch_version, loaded_libtorch

    torchvision = sys.modules.get("torchvision")
    return {"side": "python", "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": getattr(torchvision, "__version__", None), "libtorch": libtorch_version(),
            "libtorch_library": loaded_libtorch(), "threads": torch.get_num_threads()}


@dataclass
class Pass:
    loader: int
    index: int
    drawn: int = 0
    yielded: int = 0


class Recorder:
    """What is recorded and when: the twin of pytorch_parity/record's Recorder (record/recorder.rb),
    which lists it. The hooks (install) tell it what the program does."""

    def __init__(self, writer):
        self.writer = writer
        self.pid = os.getpid()
        self.loaders = weakref.WeakKeyDictionary()
        self.loader_count = 0
        self.passes = weakref.WeakKeyDictionary()
        self.calls = []
        self.model = None
        self.names = None
        self.trace = None
        self.leaves = {}
        self.sample = None
        self.compose = None
        self.current = None
        self.backwards = 0
        self.steps = 0
        self.optimizer = None
        self.schedulers = weakref.WeakKeyDictionary()
        self.scheduler_count = 0
        self.eval_recorded = False
        self.finished = False
        self.broken = False

    def guard(self, action, fallback=None):
        """Runs a piece of recording; if the recorder itself fails, it says so once (stderr and a
        recorder_error event) and records nothing more: the program goes on as if it were not watched."""
        if self.broken:
            return fallback
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - the program must not see the recorder's failures
            self.broken = True
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"parity.record: recording stopped: {type(error).__name__}: {error} ({where.filename}:{where.lineno})",
                  file=sys.stderr)
            try:
                self.writer.event("recorder_error", {"class": type(error).__name__, "message": str(error),
                                                     "backtrace": frames(error)})
            except Exception:  # noqa: BLE001
                pass
            return fallback

    def where(self):
        return {"at": dict(self.current)} if self.current else {}

    # --- loaders ---

    def pass_started(self, loader, iterator):
        return self.guard(lambda: self._start_pass(loader, iterator))

    def _start_pass(self, loader, iterator):
        entry = self.loaders.get(loader)
        if entry is None:
            entry = self.loaders[loader] = {"id": self.loader_count, "passes": 0}
            self.loader_count += 1
            self.writer.event("loader", {"loader": entry["id"], **loader_settings(loader)})
        current = Pass(entry["id"], entry["passes"])
        entry["passes"] += 1
        self.passes[iterator] = current
        self.writer.event("pass", {"loader": current.loader, "pass": current.index, "step": self.steps})
        if current.index == 0:
            self.sample = current
        return current

    def pass_of(self, iterator):
        return self.passes.get(iterator)

    def indices_drawn(self, current, indices):
        def record():
            drawn = [int(i) for i in indices] if isinstance(indices, (list, tuple)) else [int(indices)]
            self.writer.event("indices", {"loader": current.loader, "pass": current.index, "batch": current.drawn,
                                          "indices": drawn})
            current.drawn += 1
        self.guard(record)

    def batch_yielded(self, current, batch):
        def record():
            if current.index == 0 and current.yielded == 0:
                arrays, values = flatten(batch, "batch")
                self.writer.event("batch", {"loader": current.loader, "values": values}, arrays)
            if self.sample is current:
                self.sample = None
            self.current = {"loader": current.loader, "pass": current.index, "batch": current.yielded}
            current.yielded += 1
        self.guard(record)

    # --- the first sample's Compose ---

    def compose_call(self, compose, img, call):
        if self.broken or self.sample is None or self.compose is not None:
            return call(img)
        current, self.sample = self.sample, None
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None and info.id != 0:  # worker 0 makes the first batch
            return call(img)

        def start():
            names = [type(t).__name__ for t in compose.transforms]
            self.writer.event("compose", {"loader": current.loader, "transforms": names})
            self._record_image(current.loader, 0, "input", img)
            self.compose = {"loader": current.loader, "position": 0}
            return True
        if not self.guard(start, False):
            return call(img)
        transforms = compose.transforms
        compose.transforms = [_RecordedTransform(self, t) for t in transforms]
        try:
            return call(img)
        finally:
            compose.transforms = transforms
            self.compose = None

    def transform_done(self, transform, output):
        def record():
            self.compose["position"] += 1
            self._record_image(self.compose["loader"], self.compose["position"], type(transform).__name__, output)
        self.guard(record)

    def _record_image(self, loader, position, transform, value):
        arrays, values = flatten(value, "output")
        self.writer.event("transform", {"loader": loader, "position": position, "transform": transform,
                                        "values": values}, arrays)

    # --- modules: the model ---

    def module_call(self, module, args, call):
        if self.broken:
            return call()
        parent = self.calls[-1] if self.calls else None
        if parent is None and self.model is None and os.getpid() == self.pid and self.guard(
                lambda: next(module.parameters(), None) is not None, False):
            return self._first_forward(module, args, call)
        record_eval = parent is None and module is self.model and not self.eval_recorded and not module.training
        if record_eval:
            self.guard(lambda: self._record_eval_input(args))
        self.calls.append(module)
        try:
            output = call()
        finally:
            self.calls.pop()

        def after():
            if self.trace is not None and self._leaf(module):
                self._record_leaf(module, output)
            if record_eval:
                self._record_eval_output(output)
        self.guard(after)
        return output

    def _leaf(self, module):
        key = id(module)
        if key not in self.leaves:
            self.leaves[key] = next(iter(module.children()), None) is None
        return self.leaves[key]

    def _first_forward(self, model, args, call):
        self.model = model

        def before():
            self.names = {}
            for name, module in model.named_modules():
                self.names.setdefault(id(module), name)
            self.writer.event("model", {"class": type(model).__name__, "training": model.training,
                                        "stack": describe_stack(),
                                        "modules": [name for name, _ in model.named_modules() if name],
                                        "parameters": [name for name, _ in model.named_parameters()]})
            self.writer.event("initial_state", {}, {name: tensor_bytes(t) for name, t in model.state_dict().items()})
            arrays, values = flatten(list(args), "input")
            self.writer.event("model_input", {**self.where(), "training": model.training, "values": values}, arrays)
            if not model.training:
                self._record_eval_input(args)
            self.trace = {}
        self.guard(before)
        self.calls.append(model)
        try:
            output = call()
            if self.trace is not None and self._leaf(model):
                self.guard(lambda: self._record_leaf(model, output))
        finally:
            self.calls.pop()
            self.trace = None

        def after():
            arrays, values = flatten(output, "output")
            self.writer.event("model_output", {**self.where(), "training": model.training, "values": values}, arrays)
            if not model.training:
                self._record_eval_output(output)
            parameters = {name for name, _ in model.named_parameters()}
            self.writer.event("buffers_after_forward", {}, {name: tensor_bytes(t) for name, t in model.state_dict().items()
                                                            if name not in parameters})
        self.guard(after)
        return output

    def _record_leaf(self, module, output):
        name = self.names.get(id(module), f"({type(module).__name__} outside the model)")
        self.trace[name] = self.trace.get(name, 0) + 1
        key = name if self.trace[name] == 1 else f"{name}#{self.trace[name]}"
        arrays, values = flatten(output, "output")
        self.writer.event("module_output", {"module": key, "class": type(module).__name__, "values": values}, arrays)

    def _record_eval_input(self, args):
        arrays, values = flatten(list(args), "input")
        self.writer.event("eval_input", {**self.where(), "values": values}, arrays)

    def _record_eval_output(self, output):
        self.eval_recorded = True
        arrays, values = flatten(output, "output")
        self.writer.event("eval_output", {**self.where(), "step": self.steps, "values": values}, arrays)

    # --- backward, optimizer, schedulers ---

    def backward(self, loss, call):
        if self.broken:
            return call()
        index = self.backwards
        self.backwards += 1

        def record_loss():
            value = loss.item() if loss.numel() == 1 else None
            self.writer.event("loss", {**self.where(), "backward": index, "step": self.steps, "value": value},
                              {"loss": tensor_bytes(loss)})
        self.guard(record_loss)
        result = call()
        if index == 0 and self.model is not None:
            self.guard(self._record_gradients)
        return result

    def _record_gradients(self):
        arrays = {name: tensor_bytes(p.grad) for name, p in self.model.named_parameters() if p.grad is not None}
        self.writer.event("gradients", {**self.where(), "step": self.steps}, arrays)

    def optimizer_stepped(self, optimizer):
        def record():
            if self.optimizer is None:
                self.optimizer = optimizer
            if optimizer is self.optimizer:
                self.steps += 1
                if self.steps == 1:
                    self._record_optimizer(optimizer, {"after_step": 1})
        self.guard(record)

    def scheduler_created(self, scheduler):
        def record():
            self.schedulers[scheduler] = {"id": self.scheduler_count, "steps": 0}
            self.scheduler_count += 1
        self.guard(record)

    def scheduler_stepped(self, scheduler):
        self.guard(lambda: self._record_scheduler_step(scheduler))

    def _record_scheduler_step(self, scheduler):
        entry = self.schedulers.get(scheduler)
        if entry is None:
            return
        entry["steps"] += 1
        optimizer = getattr(scheduler, "optimizer", None)
        lrs = [group["lr"] for group in optimizer.param_groups] if optimizer is not None else []
        settings = {name: value for name, value in vars(scheduler).items()
                    if not name.startswith("_") and name not in ("optimizer", "verbose") and plain(value)}
        self.writer.event("scheduler", {"scheduler": entry["id"], "scheduler_step": entry["steps"],
                                        "class": type(scheduler).__name__, "step": self.steps, "lrs": lrs,
                                        "settings": settings})
        if optimizer is not None and (self.optimizer is None or optimizer is self.optimizer):
            self._record_optimizer(optimizer, {"scheduler": entry["id"], "scheduler_step": entry["steps"]})

    def _record_optimizer(self, optimizer, fields):
        names = {id(p): name for name, p in self.model.named_parameters()} if self.model is not None else {}
        arrays, values, groups = {}, {}, []
        for g, group in enumerate(optimizer.param_groups):
            for p_index, parameter in enumerate(group["params"]):
                name = names.get(id(parameter), f"group{g}.param{p_index}")
                for key, value in optimizer.state.get(parameter, {}).items():
                    array = bytes_of(value)
                    if array is not None:
                        arrays[f"{name}.{key}"] = array
                    else:
                        values[f"{name}.{key}"] = value if plain(value) else repr(value)
            groups.append({key: value for key, value in group.items() if key != "params" and plain(value)})
        scheduler_steps = sum(entry["steps"] for entry in self.schedulers.values())
        self.writer.event("optimizer", {**fields, "step": self.steps, "scheduler_steps": scheduler_steps,
                                        "class": type(optimizer).__name__,
                                        "groups": groups, "values": values}, arrays)

    # --- the end ---

    def finish(self, error):
        if self.finished or os.getpid() != self.pid:
            return
        self.finished = True
        fields = {"pytorch_parity": [], "stack": describe_stack(), "steps": self.steps, "backwards": self.backwards}
        if error is None:
            fields["status"] = "completed"
        elif isinstance(error, SystemExit):
            code = error.code
            failed = code not in (None, 0)
            fields["status"] = "exited" if failed else "completed"
            if failed:
                fields["exit_status"] = code if isinstance(code, int) else 1
        else:
            message = str(error).splitlines()
            fields["status"] = "raised"
            fields["error"] = {"class": type(error).__name__, "message": message[0] if message else "",
                               "where": script_frame(error, self.writer.script), "backtrace": frames(error)}
        try:  # also after the recorder failed: how the program ended is what matters most
            self.writer.event("end", fields)
        except Exception as failure:  # noqa: BLE001
            print(f"parity.record: the end of the run could not be recorded: {failure}", file=sys.stderr)


class _RecordedTransform:
    """A transform of the recorded sample's Compose, seen through: its output goes to the recorder."""

    def __init__(self, recorder, transform):
        self.recorder, self.transform = recorder, transform

    def __call__(self, img):
        output = self.transform(img)
        self.recorder.transform_done(self.transform, output)
        return output


def loader_settings(loader):
    from torch.utils.data import RandomSampler

    try:
        size = len(loader.dataset)
    except TypeError:
        size = None
    return {"class": type(loader).__name__, "dataset": type(loader.dataset).__name__, "dataset_size": size,
            "batch_size": loader.batch_size, "shuffle": isinstance(loader.sampler, RandomSampler),
            "num_workers": loader.num_workers, "drop_last": loader.drop_last}


def frames(error, limit=20):
    """The error's traceback, innermost first (as Ruby's backtrace), "FILE:LINE:in `FUNCTION'"."""
    return [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(traceback.extract_tb(error.__traceback__))][:limit]


def script_frame(error, script):
    """The innermost line of the recorded script in the error's traceback (else the innermost line)."""
    stack = traceback.extract_tb(error.__traceback__)
    script = os.path.abspath(script)
    mine = [f for f in stack if os.path.abspath(f.filename) == script]
    frame = (mine or stack or [None])[-1]
    return f"{os.path.relpath(frame.filename)}:{frame.lineno}:in `{frame.name}'" if frame else ""


# --- the hooks ---

def install(recorder):
    """Wraps what the recorder watches; each wrapper calls what it wraps and hands what it saw to `recorder`."""
    import torch
    from torch.utils.data import dataloader

    module_call = torch.nn.Module.__call__

    def call(module, *args, **kwargs):
        return recorder.module_call(module, args, lambda: module_call(module, *args, **kwargs))
    torch.nn.Module.__call__ = call

    backward = torch.Tensor.backward

    def tensor_backward(tensor, *args, **kwargs):
        return recorder.backward(tensor, lambda: backward(tensor, *args, **kwargs))
    torch.Tensor.backward = tensor_backward

    optimizer_init = torch.optim.Optimizer.__init__

    def init_optimizer(optimizer, *args, **kwargs):
        optimizer_init(optimizer, *args, **kwargs)
        _wrap_step(type(optimizer), recorder.optimizer_stepped)
    torch.optim.Optimizer.__init__ = init_optimizer

    schedulers = [getattr(torch.optim.lr_scheduler, name) for name in ("LRScheduler", "_LRScheduler")
                  if hasattr(torch.optim.lr_scheduler, name)]
    for base in dict.fromkeys(schedulers):
        _wrap_scheduler_init(base, recorder)

    iter_init = dataloader._BaseDataLoaderIter.__init__

    def init_iterator(iterator, loader, *args, **kwargs):
        iter_init(iterator, loader, *args, **kwargs)
        recorder.pass_started(loader, iterator)
    dataloader._BaseDataLoaderIter.__init__ = init_iterator

    def seen_in_pass(method, seen):
        """iterator.method(), then seen(its pass, what it returned) when the iterator's pass is recorded."""
        def wrapper(iterator):
            result = method(iterator)
            current = recorder.pass_of(iterator)
            if current is not None:
                seen(current, result)
            return result
        return wrapper
    iterator_class = dataloader._BaseDataLoaderIter
    iterator_class._next_index = seen_in_pass(iterator_class._next_index, recorder.indices_drawn)
    iterator_class.__next__ = seen_in_pass(iterator_class.__next__, recorder.batch_yielded)

    try:
        from torchvision import transforms
    except ImportError:
        return
    compose_call = transforms.Compose.__call__

    def compose(self, img):
        return recorder.compose_call(self, img, lambda image: compose_call(self, image))
    transforms.Compose.__call__ = compose


def _wrap_step(cls, stepped):
    """cls.step, once per class (SGD.step is SGD's own), followed by stepped(instance)."""
    if getattr(cls.step, "_parity_record", False):
        return
    original = cls.step

    @functools.wraps(original)
    def step(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        stepped(self)
        return result
    step._parity_record = True
    cls.step = step


def _wrap_scheduler_init(base, recorder):
    """A scheduler's steps are recorded from the first after its construction (its __init__ steps once)."""
    original = base.__init__

    def init(scheduler, *args, **kwargs):
        _wrap_step(type(scheduler), recorder.scheduler_stepped)
        original(scheduler, *args, **kwargs)
        recorder.scheduler_created(scheduler)
    base.__init__ = init


# --- the command ---

class _Writer(RunWriter):
    def __init__(self, directory, script, info):
        super().__init__(directory, info)
        self.script = script


def parse_seed(text):
    try:
        seed = int(text, 10)
    except (TypeError, ValueError):
        seed = None
    if seed is None or not 0 <= seed <= SEED_MAX:
        raise RecordError(f"the seed {text} is not a whole number from 0 to {SEED_MAX} (--seed N)")
    return seed


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m parity.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the folder the run goes to (new, empty, or an earlier run)")
    parser.add_argument("--seed", help="torch.manual_seed(N) before the script runs")
    parser.add_argument("script", help="the Python program, run as `python SCRIPT.py args` would")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    try:
        seed = None if args.seed is None else parse_seed(args.seed)
        if not os.path.isfile(args.script):
            raise RecordError(f"{args.script}: no such script")
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # run.json's fields once the folder is claimed: the stack is LibTorch's, which loads only then
        writer = _Writer(args.out, args.script, lambda: {
            "side": "python", "recorder": "parity/record.py", "script": args.script, "argv": list(args.args), "seed": seed,
            "cwd": os.getcwd(), "started": started, "stack": describe_stack(), "pytorch_parity": []})
    except RecordError as error:
        print(f"parity.record: {error}", file=sys.stderr)
        return 2
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    recorder = Recorder(writer)
    install(recorder)
    sys.argv = [args.script, *args.args]
    sys.path[0] = os.path.dirname(os.path.abspath(args.script))
    try:
        runpy.run_path(args.script, run_name="__main__")
    except BaseException as error:
        recorder.finish(error)
        raise
    else:
        recorder.finish(None)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
