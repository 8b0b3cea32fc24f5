"""A torchinfo-style summary of the model a strategy builds: every module (name and type), its output shape,
its parameter count, whether it trains; then the totals. The twin of ruby_port/bin/summary, row for row.

    python -m reference_py.summary [--strategy finetune] [--input-size 1 3 224 224]

The structure does not depend on the weights' values: the model is built without pretrained weights.
"""

import sys
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

# Only what parsing the options needs (bin/summary's order): LibTorch and torchvision load once they parse, imported
# by the functions below that use them.
from reference_py import recipe, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import UserError, run_cli

DEFAULT_INPUT_SIZE = (1, 3, 224, 224)
MAX_PIXELS = 1024 * 1024  # N x H x W: one 1024 x 1024 image's pixels (VGG-16's first layers hold 64 channels of each)
HEADER = ("Layer (type)", "Output Shape", "Param #", "Trainable")
WIDTHS = (44, 22, 14, 9)


def output_shapes(model, input_size):
    """name -> the output shape of each module's first call, in one eval forward pass of zeros."""
    import torch

    shapes = {}

    def hook(name):
        def record(module, inputs, output):
            shapes.setdefault(name, list(output.shape))
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_size))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def trainable(parameters):
    """True, False, Partial, or -- for a module without parameters."""
    flags = {p.requires_grad for p in parameters}
    return "--" if not flags else "Partial" if len(flags) > 1 else str(flags.pop())


def rows(model, input_size=DEFAULT_INPUT_SIZE):
    """(depth, name, type, output shape, parameter count, trainable) of every module, in registration order."""
    shapes = output_shapes(model, input_size)
    return [(0 if not name else name.count(".") + 1, name or type(module).__name__, type(module).__name__,
             shapes.get(name), sum(p.numel() for p in module.parameters()), trainable(list(module.parameters())))
            for name, module in model.named_modules()]


def totals(model):
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"Total params": total, "Trainable params": trained, "Non-trainable params": total - trained}


def _line(cells):
    return "".join(str(cell).ljust(width) for cell, width in zip(cells, WIDTHS)).rstrip()


def format_summary(model, input_size=DEFAULT_INPUT_SIZE):
    """The summary as text, one row per line."""
    rule = "=" * sum(WIDTHS)
    lines = [rule, _line(HEADER), rule]
    for depth, name, kind, shape, count, trains in rows(model, input_size):
        label = name if depth == 0 else "  " * (depth - 1) + f"{name} ({kind})"
        lines.append(_line((label, "--" if shape is None else str(shape), f"{count:,}", trains)))
    lines.append(rule)
    lines += [f"{label}: {count:,}" for label, count in totals(model).items()]
    lines.append(f"Input size: {list(input_size)}")
    lines.append(rule)
    return "\n".join(lines)


# The smallest height and width each backbone takes: torchvision's min_size (its weights' meta), written out as
# importing torchvision loads LibTorch (summary.rb's twin: torchvision-ruby has no meta); parity/test_summary.py
# keeps both equal to the meta.
SMALLEST_SIDES = {"resnet18": 1, "vgg16": 32}


def smallest_side(arch):
    return SMALLEST_SIDES[arch]


def check_input_size(input_size, strategy):
    """N 3 H W that the strategy's model runs on, else a UserError (the forward pass would raise)."""
    from reference_py.strategies import architecture

    count, channels, height, width = input_size
    arch = architecture(strategy)
    low = smallest_side(arch)
    if count < 1 or channels != 3 or min(height, width) < low or count * height * width > MAX_PIXELS:
        raise UserError(f"--input-size {list(input_size)}: expected N 3 H W, with N at least 1, 3 channels (RGB, as "
                        f"the first convolution takes), H and W at least {low} ({arch}'s smallest input) and N x H x W "
                        f"at most {MAX_PIXELS:,}, such as the default {list(DEFAULT_INPUT_SIZE)}")
    return input_size


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", choices=tuple(recipe.STRATEGY_TABLE), default=recipe.default("strategy"),
                        help=f"the model of this strategy (default {recipe.default('strategy')})")
    parser.add_argument("--input-size", type=int, nargs=4, default=list(DEFAULT_INPUT_SIZE), metavar=("N", "C", "H", "W"),
                        help=f"the input of the forward pass that gives the output shapes "
                             f"(default {' '.join(map(str, DEFAULT_INPUT_SIZE))})")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_input_size(args.input_size, args.strategy)
    threads.configure()
    from reference_py.strategies import build_model

    model = build_model(args.strategy, None)
    print(format_summary(model, tuple(args.input_size)))


if __name__ == "__main__":
    run_cli(main)
