"""The four ways to train: which parameters learn, at which learning rate.

finetune           all parameters, SGD(lr, momentum)                     (the tutorial's model_ft)
feature_extractor  only fc; the backbone has requires_grad = False       (the tutorial's model_conv)
backbone_lr        all parameters in two groups: backbone at backbone_lr, fc at head_lr
scratch            no pretrained weights; all parameters, SGD(lr, momentum)
"""

from torch import optim
from torch.optim import lr_scheduler

from reference_py.model import HEAD, resnet18_with_head

STRATEGIES = ("finetune", "feature_extractor", "backbone_lr", "scratch")


def is_head(name):
    return name.startswith(HEAD + ".")


def uses_pretrained(strategy):
    return strategy != "scratch"


def build_model(strategy, backbone_state, num_classes=2):
    """ResNet-18 for `strategy`: pretrained backbone (unless scratch), new fc, frozen backbone if feature_extractor."""
    model = resnet18_with_head(backbone_state if uses_pretrained(strategy) else None, num_classes)
    prepare(strategy, model)
    return model


def prepare(strategy, model):
    if strategy == "feature_extractor":
        for name, param in model.named_parameters():
            param.requires_grad = is_head(name)
    return model


def param_groups(strategy, model, lr, backbone_lr, head_lr):
    """Parameters that train, in named_parameters() order: one group, or backbone then head for backbone_lr."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if strategy == "backbone_lr":
        return [
            {"params": [p for name, p in trainable if not is_head(name)], "lr": backbone_lr},
            {"params": [p for name, p in trainable if is_head(name)], "lr": head_lr},
        ]
    return [{"params": [p for _, p in trainable], "lr": lr}]


def make_optimizer(strategy, model, lr=0.001, momentum=0.9, backbone_lr=1e-4, head_lr=1e-3):
    return optim.SGD(param_groups(strategy, model, lr, backbone_lr, head_lr), lr=lr, momentum=momentum)


def make_scheduler(optimizer, step_size=7, gamma=0.1):
    """Decay LR by a factor of gamma every step_size epochs."""
    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
