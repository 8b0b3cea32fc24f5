"""The zoo: every architecture torchvision-ruby 0.3 shares with torchvision 0.14, run the same way on both sides.

For each architecture (in a directory of its own under --out):
  standin_weights, standin_batch   the stand-in: torchvision's initialisation from SEED (NOT trained
                                   weights), a seeded batch of 2 inputs at the architecture's input_size
                                   and 2 targets; written by this side, read by ruby_port/bin/zoo
  ruby/init                        the port's own initialisation from SEED: every state-dict entry's
                                   sha256 (meta), in full each one whose bytes differ from the stand-in's
  python/                          what this side computed from them (the port writes ruby/ alike):
    eval_logits      the logits in eval mode
    eval_trace       every leaf module's output in eval mode, in forward order ("0007 features.6")
    train_trace      the same in train mode, the forward of the training step
    dropout_masks    per Dropout call of that forward, 1 where it kept an element, 0 where it zeroed one
    train_loss       cross-entropy of the training step
    grads            every parameter's gradient after its backward
    state_after      every parameter and buffer (BatchNorm statistics, num_batches_tracked) after one
                     SGD step with momentum (its momentum buffers are the gradients after one step: not
                     written again, the VGGs' are 550 MB)
    done.json        the stack this side ran on (parity/runs.py: same_stack)

The inputs are the smallest each architecture accepts (torchvision's min_size: AlexNet 63, VGG 32), but at
least MIN_INPUT: the ResNets accept 1x1, where every 3x3 convolution sees only its centre tap and padding
and strides go untested; 32, their total stride, leaves their last stage one whole pixel.

The parity test (parity/test_zoo.py) compares each directory once both sides are done, and deletes it. This
side writes architecture k only when architecture k - LOOKAHEAD has been compared, so that the big ones
(VGG: 550 MB of weights, twice that in results per side) never pile up on disk.

--out is claimed as every writer's output (reference_py/output_claim.py): a new or empty folder (or one an earlier
zoo left empty), locked while the zoo runs; its marker names the zoo, and the Ruby side works only in such a
folder.

With --digests-only (given to both sides) the stand-in's weights and every result are written as their digests
alone (tensor_io.write_digests), not their values: equal tensors are proven equal without writing their bytes. The
port then computes from its own initialisation, which its digests prove to be the stand-in's (where they do not, it
writes ruby/init and no result). The parity test runs this way, and runs an architecture again without
--digests-only where a digest differs, to measure where and by how much.

    python reference_py/zoo.py --out DIR [--arch NAME ...] [--digests-only]
"""

import json
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what parsing the options needs (bin/zoo's order): LibTorch, torchvision and the modules that load them come
# once they parse, imported by the functions below that use them.
from reference_py import atomic, output_claim, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import run_cli

ARCHITECTURES = (
    "alexnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn",
)
MIN_INPUT = 32
BATCH = 2
SEED = 0
LR = 0.01
MOMENTUM = 0.9
LOOKAHEAD = 2
POLL_SECONDS = 0.05
TIMEOUT = 1800  # seconds either side waits for the other (the parity test too)
NOTICE_SECONDS = 10  # a longer wait says what it waits for: run by hand, the zoo may wait for what never comes


def input_size(arch):
    """The side of the square input: torchvision's min_size for the architecture, at least MIN_INPUT."""
    import torchvision

    min_height, min_width = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.meta["min_size"]
    return max(min_height, min_width, MIN_INPUT)


def build(arch):
    """torchvision's model, initialised by torchvision from the current seed."""
    import torchvision

    return getattr(torchvision.models, arch)(weights=None)


def standin(arch, seed=SEED):
    """(model, inputs, targets): the model initialised from `seed`, a batch drawn from a generator of `seed`."""
    import torch

    torch.manual_seed(seed)
    model = build(arch)
    generator = torch.Generator().manual_seed(seed)
    size = input_size(arch)
    inputs = torch.randn(BATCH, 3, size, size, generator=generator)
    targets = torch.randint(0, 1000, (BATCH,), generator=generator)
    return model, inputs, targets


def leaf_modules(model):
    """(name, module) of every module without children, in registration order."""
    return [(name, module) for name, module in model.named_modules() if not list(module.children())]


class LeafRecorder:
    """Forward hooks on every leaf module: each call's output in call order, and Dropout's masks."""

    def __init__(self, model):
        self.outputs, self.masks = {}, {}
        self.handles = [module.register_forward_hook(self._hook(name)) for name, module in leaf_modules(model)]

    def _hook(self, name):
        from torch import nn

        def record(module, inputs, output):
            key = f"{len(self.outputs):04d} {name}"
            self.outputs[key] = output.detach().clone()  # a copy: an in-place ReLU would overwrite it
            if isinstance(module, nn.Dropout) and module.training:
                self.masks[key] = dropout_mask(inputs[0], output)
        return record

    def remove(self):
        for handle in self.handles:
            handle.remove()


def dropout_mask(inputs, output):
    """1 where Dropout kept an element (or could not zero it: it was 0), 0 where it zeroed a non-zero one."""
    import torch

    return ((output != 0) | (inputs == 0)).to(torch.uint8)


def traced(model, inputs):
    """(logits, leaf outputs, Dropout masks) of one forward pass."""
    recorder = LeafRecorder(model)
    try:
        logits = model(inputs)
    finally:
        recorder.remove()
    return logits, recorder.outputs, recorder.masks


def run(model, inputs, targets, seed=SEED):
    """Every result the module's docstring lists, as (name, {key: tensor}) in the order they are made. The
    gradients are the parameters' own, before the SGD step: a caller writes them when they come (a copy of them
    cost a VGG a page fault per page of its 553 MB)."""
    import torch
    from torch import nn, optim

    model.eval()
    with torch.no_grad():
        logits, eval_trace, _ = traced(model, inputs)
    yield "eval_logits", {"logits": logits}
    yield "eval_trace", eval_trace
    model.train()
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    optimizer.zero_grad()
    torch.manual_seed(seed)  # Dropout's draws
    outputs, train_trace, masks = traced(model, inputs)
    loss = nn.CrossEntropyLoss()(outputs, targets)
    loss.backward()
    yield "train_trace", train_trace
    yield "dropout_masks", masks
    yield "train_loss", {"loss": loss.detach()}
    yield "grads", {name: p.grad for name, p in model.named_parameters()}
    optimizer.step()
    yield "state_after", model.state_dict()


def wait_for(path, what, timeout=TIMEOUT, notice=NOTICE_SECONDS):
    """Until path() is true; a wait longer than `notice` seconds says once on stderr what it waits for."""
    start = time.monotonic()
    noticed = False
    while not path():
        waited = time.monotonic() - start
        if waited > timeout:
            raise TimeoutError(f"zoo: waited {timeout} s for {what}")
        if waited > notice and not noticed:
            print(f"zoo: waiting for {what}", file=sys.stderr)
            noticed = True
        time.sleep(POLL_SECONDS)


def write_arch(out, arch, previous, digests_only=False):
    """The stand-in of `arch`, then this side's results, once `previous` (LOOKAHEAD back) is compared. digests_only:
    the stand-in's weights and the results as their digests alone (tensor_io.write_digests), the batch in full."""
    import torch

    from reference_py import runtime_info
    from reference_py.tensor_io import write_bundle, write_digests

    if previous is not None:
        wait_for(lambda: not (out / previous).exists(),
                 f"{out / previous} to be compared and removed (parity/test_zoo.py does so as the zoo goes; by hand, "
                 f"remove it once compared, or give at most {LOOKAHEAD} architectures)")
    folder = out / arch
    folder.mkdir(parents=True, exist_ok=True)
    write = write_digests if digests_only else write_bundle
    model, inputs, targets = standin(arch)
    write(folder / "standin_weights", model.state_dict(), meta={"arch": arch, "seed": SEED})
    write_bundle(folder / "standin_batch", {"inputs": inputs, "targets": targets},
                 meta={"arch": arch, "seed": SEED, "lr": LR, "momentum": MOMENTUM})
    side = folder / "python"
    side.mkdir(exist_ok=True)
    for name, tensors in run(model, inputs, targets):
        write(side / name, tensors, meta={"arch": arch})
    atomic.write_text(side / "done.json", json.dumps(runtime_info.describe(torch.get_num_threads())) + "\n")


class ZooFolder(output_claim.OutputDir):
    """The claim of --out, with the zoo's own rule: both sides write into the claimed folder as they go,
    arch by arch (the Ruby side reads what Python wrote there), so it is not written aside and renamed."""

    def in_place(self):
        """The claimed target itself, made if missing and marked as the zoo's (listing no file)."""
        self.target.mkdir(exist_ok=True)
        if output_claim.read_marker(self.target) is None:
            self._new_marker(self.target, [])
        return self.target


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the directory both sides work in")
    parser.add_argument("--arch", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES),
                        help=f"architectures, in order (default: all {len(ARCHITECTURES)})")
    parser.add_argument("--digests-only", action="store_true",
                        help="write the stand-in's weights and the results as their sha256 digests alone, not their "
                             "values (give it to both sides; parity/test_zoo.py does, and runs an architecture again "
                             "without it where a digest differs)")
    args = parser.parse_args(argv)
    output_claim.check_path_option(args.out, "--out")
    with ZooFolder(args.out, "zoo", "--out") as output:  # claimed before LibTorch loads: a refused --out costs nothing
        threads.configure()
        out = output.in_place()
        for index, arch in enumerate(args.arch):
            write_arch(out, arch, args.arch[index - LOOKAHEAD] if index >= LOOKAHEAD else None, args.digests_only)


if __name__ == "__main__":
    run_cli(main)
