"""The ways to train, as reference_py/recipe.py's STRATEGY_TABLE says: which model, which parameters
learn, at which learning rate. Nothing here names a strategy: a row of the table is all a new one needs.

RESNET18_STRATEGIES (every ResNet-18 row) is what the replay and the fixtures cover by default. Its names load
without LibTorch (the replay's checks before LibTorch loads use them); the optimizer and the scheduler import it.
"""

from reference_py.model import HEAD, VGG16_HEAD, resnet18_with_head, vgg16_with_head
from reference_py.recipe import STRATEGY_TABLE, default

STRATEGIES = tuple(STRATEGY_TABLE)
RESNET18_STRATEGIES = tuple(s for s in STRATEGIES if STRATEGY_TABLE[s].architecture == "resnet18")
FROZEN_BACKBONE = tuple(s for s in STRATEGIES if STRATEGY_TABLE[s].trains == "head")
HEADS = {"resnet18": HEAD, "vgg16": VGG16_HEAD}
WITH_HEAD = {"resnet18": resnet18_with_head, "vgg16": vgg16_with_head}


def architecture(strategy):
    """The torchvision architecture a strategy trains: resnet18 or vgg16."""
    return STRATEGY_TABLE[strategy].architecture


def head(strategy):
    """The name of the module a strategy replaces with a new head."""
    return HEADS[architecture(strategy)]


def is_head(name, strategy):
    return name.startswith(head(strategy) + ".")


def uses_pretrained(strategy):
    return STRATEGY_TABLE[strategy].pretrained


def build_model(strategy, backbone_state, num_classes=2):
    """The model of `strategy`: pretrained backbone (if the table says so), new head, frozen backbone if FROZEN_BACKBONE."""
    model = WITH_HEAD[architecture(strategy)](backbone_state if uses_pretrained(strategy) else None, num_classes)
    prepare(strategy, model)
    return model


def prepare(strategy, model):
    if strategy in FROZEN_BACKBONE:
        for name, param in model.named_parameters():
            param.requires_grad = is_head(name, strategy)
    return model


def param_groups(strategy, model, lr, backbone_lr, head_lr):
    """The table's groups, each of the parameters that train in named_parameters() order, at its rate."""
    rates = {"lr": lr, "backbone_lr": backbone_lr, "head_lr": head_lr}
    parts = {"trainable": lambda name: True,
             "backbone": lambda name: not is_head(name, strategy),
             "head": lambda name: is_head(name, strategy)}
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for name, p in trainable if parts[part](name)], "lr": rates[rate]}
            for part, rate in STRATEGY_TABLE[strategy].groups]


def make_optimizer(strategy, model, lr=default("lr"), momentum=default("momentum"), backbone_lr=default("backbone_lr"),
                   head_lr=default("head_lr")):
    from torch import optim

    return optim.SGD(param_groups(strategy, model, lr, backbone_lr, head_lr), lr=lr, momentum=momentum)


def make_scheduler(optimizer, step_size=default("step_size"), gamma=default("gamma")):
    """Decay LR by a factor of gamma every step_size epochs."""
    from torch.optim import lr_scheduler

    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
