"""The benchmarked workload in Python: the tutorial's ResNet-18, a random batch, one step by phases.

The twin of bench/workload.rb. The model and optimizer come from the reference's own code
(reference_py/strategies.py); if that cannot be imported, from torchvision directly (`SOURCE` says which).
"""

import torch
from torch import nn

from reference_py import recipe

MODES = ("finetune", "feature_extractor", "eval")
TRAIN_PHASES = ("zero_grad", "forward", "loss", "backward", "step")
EVAL_PHASES = ("forward",)
CHANNELS, SIZE, NUM_CLASSES = 3, 224, 2
# The tutorial's settings, from the reference's one table of them (torch-free, so read even when strategies.py is not).
BATCH_SIZE, LR, MOMENTUM = recipe.default("batch_size"), recipe.default("lr"), recipe.default("momentum")

try:
    from reference_py import strategies
    SOURCE = "reference_py/strategies.py"
except ImportError:  # the reference not there (yet): the same network, straight from torchvision
    strategies = None
    SOURCE = "torchvision.models.resnet18 (reference_py/strategies.py not importable)"


def phases(mode):
    return EVAL_PHASES if mode == "eval" else TRAIN_PHASES


def batch():
    """4 random 3x224x224 images and their labels, the same values in both languages."""
    torch.manual_seed(0)
    return torch.randn(BATCH_SIZE, CHANNELS, SIZE, SIZE), torch.tensor([0, 1, 0, 1])


def build(mode):
    """(model, optimizer) for `mode`: random weights, fc 512->2; eval mode and no optimizer for "eval"."""
    strategy = "finetune" if mode == "eval" else mode
    if strategies is not None:
        model = strategies.build_model(strategy, None, NUM_CLASSES)
        optimizer = strategies.make_optimizer(strategy, model, lr=LR, momentum=MOMENTUM)
    else:
        import torchvision
        model = torchvision.models.resnet18(weights=None)
        model.fc = nn.Linear(model.fc.in_features, NUM_CLASSES)
        if recipe.STRATEGY_TABLE[strategy].trains == "head":
            for name, param in model.named_parameters():
                param.requires_grad = name.startswith("fc.")
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=LR, momentum=MOMENTUM)
    if mode == "eval":
        return model.eval(), None
    return model.train(), optimizer


def run(mode, model, optimizer, criterion, inputs, labels, mark):
    """One training step (or eval forward); mark(phase) is called as each phase ends."""
    if mode == "eval":
        with torch.no_grad():
            model(inputs)
        mark("forward")
        return
    optimizer.zero_grad()
    mark("zero_grad")
    outputs = model(inputs)
    mark("forward")
    loss = criterion(outputs, labels)
    mark("loss")
    loss.backward()
    mark("backward")
    optimizer.step()
    mark("step")


def step_fn(mode):
    """step(mark): one step of `mode` on a fresh model and the fixed batch, mark(phase) as each phase ends."""
    inputs, labels = batch()
    model, optimizer = build(mode)
    criterion = nn.CrossEntropyLoss()
    return lambda mark: run(mode, model, optimizer, criterion, inputs, labels, mark)
