"""The ways to train: which model, which parameters learn, at which learning rate.

finetune                 ResNet-18, all parameters, SGD(lr, momentum)               (the tutorial's model_ft)
feature_extractor        ResNet-18, only fc; the backbone has requires_grad = False (the tutorial's model_conv)
backbone_lr              ResNet-18, all parameters in two groups: backbone at backbone_lr, fc at head_lr
scratch                  ResNet-18, no pretrained weights; all parameters, SGD(lr, momentum)
vgg16_feature_extractor  VGG-16, features frozen, classifier replaced by Linear(25088, 2): only it learns

The first four are RESNET18_STRATEGIES, what the replay and the fixtures cover by default.
"""

from torch import optim
from torch.optim import lr_scheduler

from reference_py.model import HEAD, VGG16_HEAD, resnet18_with_head, vgg16_with_head

RESNET18_STRATEGIES = ("finetune", "feature_extractor", "backbone_lr", "scratch")
STRATEGIES = (*RESNET18_STRATEGIES, "vgg16_feature_extractor")
FROZEN_BACKBONE = ("feature_extractor", "vgg16_feature_extractor")


def architecture(strategy):
    """The torchvision architecture a strategy trains: resnet18 or vgg16."""
    return "vgg16" if strategy == "vgg16_feature_extractor" else "resnet18"


def head(strategy):
    """The name of the module a strategy replaces with a new head."""
    return VGG16_HEAD if architecture(strategy) == "vgg16" else HEAD


def is_head(name, strategy):
    return name.startswith(head(strategy) + ".")


def uses_pretrained(strategy):
    return strategy != "scratch"


def build_model(strategy, backbone_state, num_classes=2):
    """The model of `strategy`: pretrained backbone (unless scratch), new head, frozen backbone if FROZEN_BACKBONE."""
    with_head = vgg16_with_head if architecture(strategy) == "vgg16" else resnet18_with_head
    model = with_head(backbone_state if uses_pretrained(strategy) else None, num_classes)
    prepare(strategy, model)
    return model


def prepare(strategy, model):
    if strategy in FROZEN_BACKBONE:
        for name, param in model.named_parameters():
            param.requires_grad = is_head(name, strategy)
    return model


def param_groups(strategy, model, lr, backbone_lr, head_lr):
    """Parameters that train, in named_parameters() order: one group, or backbone then head for backbone_lr."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if strategy == "backbone_lr":
        return [
            {"params": [p for name, p in trainable if not is_head(name, strategy)], "lr": backbone_lr},
            {"params": [p for name, p in trainable if is_head(name, strategy)], "lr": head_lr},
        ]
    return [{"params": [p for _, p in trainable], "lr": lr}]


def make_optimizer(strategy, model, lr=0.001, momentum=0.9, backbone_lr=1e-4, head_lr=1e-3):
    return optim.SGD(param_groups(strategy, model, lr, backbone_lr, head_lr), lr=lr, momentum=momentum)


def make_scheduler(optimizer, step_size=7, gamma=0.1):
    """Decay LR by a factor of gamma every step_size epochs."""
    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
