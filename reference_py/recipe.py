"""The tutorial's recipe, in one place: its settings (default and help) and its strategies.

Every entry point reads these two tables: train.py's get_args_parser, summary.py, replay.py,
the fixtures' PROTOCOL (fixtures_format.py), strategies.py (which builds what a strategy says), bench/workload.py;
ruby_port/lib/hymenoptera/recipe.rb is the Ruby twin (parity/test_options.py checks they agree).
Adding a strategy is one row of STRATEGY_TABLE here and one in recipe.rb. No torch here: the help
and the checks need none.
"""

from typing import NamedTuple


class Setting(NamedTuple):
    type: str  # "int", "float" or "choice"
    default: object
    help: str
    replay: object = None  # its value in the replay protocol (fixtures_format.PROTOCOL); None: not part of it


class Strategy(NamedTuple):
    architecture: str  # "resnet18" or "vgg16"
    pretrained: bool  # the backbone starts from the pretrained weights (or from torchvision's random init)
    trains: str  # "all" parameters, or only the new "head" (the backbone gets requires_grad = False)
    groups: tuple  # SGD's parameter groups: (part, rate setting) each; part is "trainable", "backbone" or "head"
    about: str


# In order: SGD's parameter groups and the replay's protocol keep this order.
STRATEGY_TABLE = {
    "finetune": Strategy("resnet18", True, "all", (("trainable", "lr"),),
                         "ResNet-18, all parameters at lr (the tutorial's model_ft)"),
    "feature_extractor": Strategy("resnet18", True, "head", (("trainable", "lr"),),
                                  "ResNet-18, only fc learns (the tutorial's model_conv)"),
    "backbone_lr": Strategy("resnet18", True, "all", (("backbone", "backbone_lr"), ("head", "head_lr")),
                            "ResNet-18, two groups: the backbone at backbone_lr, fc at head_lr"),
    "scratch": Strategy("resnet18", False, "all", (("trainable", "lr"),),
                        "ResNet-18 without pretrained weights, all parameters at lr"),
    "vgg16_feature_extractor": Strategy("vgg16", True, "head", (("trainable", "lr"),),
                                        "VGG-16, features frozen, the classifier replaced by Linear(25088, 2)"),
}

SETTINGS = {
    "strategy": Setting("choice", "finetune", "how the model learns"),
    "epochs": Setting("int", 25, "passes over the training images", replay=2),
    "batch_size": Setting("int", 4, "images per step", replay=4),
    "lr": Setting("float", 0.001, "learning rate", replay=0.001),
    "momentum": Setting("float", 0.9, "SGD's momentum", replay=0.9),
    "backbone_lr": Setting("float", 1e-4, "the backbone's learning rate", replay=1e-4),
    "head_lr": Setting("float", 1e-3, "the head's learning rate", replay=1e-3),
    # 1 in the replay, not the tutorial's 7: the scheduler acts within the replay's 2 epochs
    "step_size": Setting("int", 7, "StepLR: decay the learning rate every N epochs", replay=1),
    "gamma": Setting("float", 0.1, "StepLR: by this factor", replay=0.1),
    "workers": Setting("int", 4, "DataLoader worker processes (num_workers, as the tutorial; 0 loads in this process)"),
}

# Where each architecture's pretrained weights are by default (pretrained.py's --out; the trainers make them there).
WEIGHTS = {"resnet18": "net.pth", "vgg16": "vgg16.pth"}

# The replay protocol's settings: counts (at least 1) and rates (finite, at least 0), as train and replay check them.
COUNTS = tuple(name for name, s in SETTINGS.items() if s.replay is not None and s.type == "int")
RATES = tuple(name for name, s in SETTINGS.items() if s.replay is not None and s.type == "float")


def default(name):
    return SETTINGS[name].default


def flag(name):
    return "--" + name.replace("_", "-")


def choices(name):
    return tuple(STRATEGY_TABLE) if name == "strategy" else None


def users(name):
    """The strategies that train at rate setting `name`."""
    return [s for s, row in STRATEGY_TABLE.items() if any(rate == name for _, rate in row.groups)]


def help_text(name):
    """The help line of setting `name`, the same words in both languages' --help."""
    setting = SETTINGS[name]
    words = setting.help
    if name == "strategy":
        words = f"{words}: one of {', '.join(STRATEGY_TABLE)}"
    elif users(name):
        words = f"{words} ({', '.join(users(name))})"
    return f"{words} (default {setting.default})"


def weights_help():
    """--weights' help line in both trainers: the default file of the default strategy's architecture, and of
    each other architecture the strategies that use it."""
    default_arch = STRATEGY_TABLE[SETTINGS["strategy"].default].architecture
    defaults = [f"./{WEIGHTS[default_arch]}"]
    for arch, path in WEIGHTS.items():
        strategies = [name for name, row in STRATEGY_TABLE.items() if row.architecture == arch and row.pretrained]
        if arch != default_arch and strategies:
            defaults.append(f"for {', '.join(strategies)} ./{path}")
    return f"{WEIGHTS[default_arch]} from reference_py/pretrained.py (default: {', '.join(defaults)}, made if missing)"


def replay_protocol():
    """fixtures_format.PROTOCOL: every setting the replay fixes, at its replay value, in table order."""
    return {name: s.replay for name, s in SETTINGS.items() if s.replay is not None}


def describe():
    """The tables as plain data (parity/test_options.py compares this with recipe.rb's describe)."""
    return {
        "settings": {name: {"type": s.type, "default": s.default, "flag": flag(name), "help": help_text(name),
                            "replay": s.replay} for name, s in SETTINGS.items()},
        "strategies": {name: {"architecture": s.architecture, "pretrained": s.pretrained, "trains": s.trains,
                              "groups": [list(g) for g in s.groups], "about": s.about}
                       for name, s in STRATEGY_TABLE.items()},
        "weights": {arch: {"path": path} for arch, path in WEIGHTS.items()},
        "weights_help": weights_help(),
    }


if __name__ == "__main__":
    import json
    print(json.dumps(describe(), indent=1))
