"""ResNet-18 (and VGG-16) with a new two-class head, and ResNet-18's forward pass written out module by module.

Its names load without LibTorch (the replay checks fixtures against HEAD_FEATURES before LibTorch loads): the
functions import torch.
"""

FORWARD_ORDER = (
    "conv1", "bn1", "relu", "maxpool",
    "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1",
    "avgpool", "flatten", "fc",
)
HEAD = "fc"
VGG16_HEAD = "classifier"
VGG16_FEATURES = 512 * 7 * 7  # what VGG-16's features and avgpool give the classifier: 25,088
VGG16_FORWARD_ORDER = (*(f"features.{index}" for index in range(31)), "avgpool", "flatten", "classifier")
FORWARD_ORDERS = {"resnet18": FORWARD_ORDER, "vgg16": VGG16_FORWARD_ORDER}
HEAD_FEATURES = {"resnet18": 512, "vgg16": VGG16_FEATURES}  # the new head's in_features


def resnet18_with_head(backbone_state=None, num_classes=2):
    """torchvision's ResNet-18, loaded with `backbone_state` (1000-class) if given, fc replaced by Linear(512, n)."""
    import torchvision
    from torch import nn

    model = torchvision.models.resnet18(weights=None)
    if backbone_state is not None:
        model.load_state_dict(backbone_state)
    num_ftrs = model.fc.in_features
    model.fc = nn.Linear(num_ftrs, num_classes)
    return model


def vgg16_with_head(backbone_state=None, num_classes=2):
    """torchvision's VGG-16, loaded with `backbone_state` (1000-class) if given, its whole classifier replaced
    by Linear(25088, n)."""
    import torchvision
    from torch import nn

    model = torchvision.models.vgg16(weights=None)
    if backbone_state is not None:
        model.load_state_dict(backbone_state)
    model.classifier = nn.Linear(VGG16_FEATURES, num_classes)
    return model


def seeded_head(seed, in_features=512, num_classes=2):
    """The new fc layer, initialised from `seed` (what the fixtures' `initial` holds)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Linear(in_features, num_classes)


def forward_trace(model, x, order=FORWARD_ORDER):
    """The output of every module in `order` (FORWARD_ORDER: ResNet.forward; VGG16_FORWARD_ORDER: VGG.forward),
    computing the forward pass step by step.

    Outputs are copied: an in-place ReLU would otherwise overwrite the output before it."""
    import torch

    trace = {}
    for name in order:
        x = torch.flatten(x, 1) if name == "flatten" else model.get_submodule(name)(x)
        trace[name] = x.clone()
    return trace


def param_counts(model):
    """Scalar parameters that train, that are frozen, and in all (as torchsummary shows them)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "frozen": total - trainable, "total": total}
