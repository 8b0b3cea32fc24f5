"""Which parameters each strategy trains, in which optimizer groups, at which learning rates."""

import pytest
import torch
import torchvision

from reference_py.strategies import RESNET18_STRATEGIES, STRATEGIES, build_model, make_optimizer, make_scheduler


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(11)
    return torchvision.models.resnet18(weights=None).state_dict()


def group_names(model, optimizer):
    names = {id(p): name for name, p in model.named_parameters()}
    return [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]


def test_strategy_names():
    assert RESNET18_STRATEGIES == ("finetune", "feature_extractor", "backbone_lr", "scratch")
    assert STRATEGIES == (*RESNET18_STRATEGIES, "vgg16_feature_extractor")


def test_vgg16_feature_extractor_trains_only_its_new_classifier():
    model = build_model("vgg16_feature_extractor", None)
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
    assert (model.classifier.in_features, model.classifier.out_features) == (25088, 2)
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "AdaptiveAvgPool2d", "Linear"]
    groups = make_optimizer("vgg16_feature_extractor", model).param_groups
    assert [p for group in groups for p in group["params"]] == [model.classifier.weight, model.classifier.bias]


@pytest.mark.parametrize("strategy, trains_backbone, groups, lrs", [
    ("finetune", True, 1, [0.001]),
    ("feature_extractor", False, 1, [0.001]),
    ("backbone_lr", True, 2, [1e-4, 1e-3]),
    ("scratch", True, 1, [0.001]),
])
def test_trainable_parameters_and_groups(backbone, strategy, trains_backbone, groups, lrs):
    model = build_model(strategy, backbone)
    optimizer = make_optimizer(strategy, model)
    all_names = [name for name, _ in model.named_parameters()]
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == (all_names if trains_backbone else ["fc.weight", "fc.bias"])
    names = group_names(model, optimizer)
    assert len(names) == groups
    assert [name for group in names for name in group] == trainable  # named_parameters() order
    if strategy == "backbone_lr":
        assert names[1] == ["fc.weight", "fc.bias"]
        assert not any(name.startswith("fc.") for name in names[0])
    assert [group["lr"] for group in optimizer.param_groups] == lrs
    assert all(group["momentum"] == 0.9 and group["weight_decay"] == 0 and group["dampening"] == 0
               and not group["nesterov"] for group in optimizer.param_groups)
    assert model.fc.out_features == 2 and model.fc.in_features == 512


@pytest.mark.parametrize("strategy", RESNET18_STRATEGIES)
def test_only_scratch_starts_without_the_pretrained_weights(backbone, strategy):
    model = build_model(strategy, backbone)
    loaded = torch.equal(model.conv1.weight, backbone["conv1.weight"])
    assert loaded == (strategy != "scratch")


def test_learning_rates_passed_through(backbone):
    model = build_model("backbone_lr", backbone)
    optimizer = make_optimizer("backbone_lr", model, lr=0.5, momentum=0.8, backbone_lr=0.01, head_lr=0.2)
    assert [group["lr"] for group in optimizer.param_groups] == [0.01, 0.2]
    assert all(group["momentum"] == 0.8 for group in optimizer.param_groups)


def test_scheduler_is_the_tutorials_step_lr(backbone):
    optimizer = make_optimizer("finetune", build_model("finetune", backbone))
    scheduler = make_scheduler(optimizer)
    assert (scheduler.step_size, scheduler.gamma) == (7, 0.1)


def test_forward_trace_keeps_each_modules_own_output():
    from reference_py.model import FORWARD_ORDER, forward_trace, resnet18_with_head

    torch.manual_seed(0)
    model = resnet18_with_head(None).eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        trace = forward_trace(model, inputs)
        output = model(inputs)
    assert list(trace) == list(FORWARD_ORDER)
    assert torch.equal(trace["fc"], output)
    assert (trace["bn1"] < 0).any(), "bn1's traced output keeps its negative values (ReLU runs in place)"
    assert torch.equal(trace["bn1"].clamp(min=0), trace["relu"])
