"""train_model: the tutorial's loop, its log lines, StepLR per epoch, and the best-weights rule."""

import re

import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from reference_py.strategies import make_scheduler
from reference_py.train import train_model


def loaders(train, val):
    return {"train": DataLoader(TensorDataset(*train), batch_size=4),
            "val": DataLoader(TensorDataset(*val), batch_size=4)}


def random_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=generator)
    y = (x[:, 0] > 0).long()
    return loaders((x, y), (x[:6], y[:6]))


@pytest.mark.parametrize("step_size, gamma, epochs", [(7, 0.1, 9), (2, 0.5, 5)])
def test_step_lr_decays_after_every_step_size_epochs(step_size, gamma, epochs):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    scheduler = make_scheduler(optimizer, step_size, gamma)
    _, history = train_model(model, nn.CrossEntropyLoss(), optimizer, scheduler, random_problem(), epochs,
                             progress=False)
    lrs = [record["lr"][0] for record in history["epochs"]]
    assert lrs == pytest.approx([0.001 * gamma ** (epoch // step_size) for epoch in range(epochs)])
    assert scheduler.last_epoch == epochs


class ScriptedSGD(optim.SGD):
    """An optimizer whose k-th step sets the weights to script[k]: val accuracy follows the script."""

    def __init__(self, model, script):
        super().__init__(model.parameters(), lr=0.1)
        self.model, self.script, self.steps = model, script, 0

    @torch.no_grad()
    def step(self, closure=None):
        weight, bias = self.script[self.steps]
        self.model.weight.copy_(torch.tensor(weight))
        self.model.bias.copy_(torch.tensor(bias))
        self.steps += 1


def test_best_weights_are_those_of_the_first_best_epoch(capsys):
    # val: x = 1 is class 0, x = -1 is class 1; each script entry fixes the epoch's val accuracy
    script = [
        ([[0.0], [0.0]], [1.0, 0.0]),   # always class 0: acc 0.5
        ([[1.0], [-1.0]], [0.0, 0.0]),  # both right: acc 1.0  <- best
        ([[2.0], [-2.0]], [0.0, 0.0]),  # both right again: acc 1.0, not strictly better
        ([[-1.0], [1.0]], [0.0, 0.0]),  # both wrong: acc 0.0
    ]
    model = nn.Linear(1, 2)
    optimizer = ScriptedSGD(model, script)
    scheduler = make_scheduler(optimizer)
    data = loaders((torch.tensor([[0.5]]), torch.tensor([0])),
                   (torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 1])))
    model, history = train_model(model, nn.CrossEntropyLoss(), optimizer, scheduler, data, len(script),
                                 progress=False)
    assert [record["val_acc"] for record in history["epochs"]] == [0.5, 1.0, 1.0, 0.0]
    assert history["best_epoch"] == 1 and history["best_acc"] == 1.0
    assert torch.equal(model.weight, torch.tensor([[1.0], [-1.0]]))
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Epoch 0/3", "----------"]
    assert re.fullmatch(r"train Loss: \d+\.\d{4} Acc: \d\.\d{4}", out[2])
    assert out[3] == "val Loss: {:.4f} Acc: 0.5000".format(history["epochs"][0]["val_loss"])
    assert re.fullmatch(r"Training complete in \d+m \d+s", out[-2])
    assert out[-1] == "Best val Acc: 1.000000"


def test_without_any_improvement_the_initial_weights_stay():
    model = nn.Linear(1, 2)
    script = [([[-1.0], [1.0]], [0.0, 0.0])]  # acc 0.0, never above the starting 0.0
    initial = model.weight.detach().clone()
    data = loaders((torch.tensor([[0.5]]), torch.tensor([0])), (torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 1])))
    optimizer = ScriptedSGD(model, script)
    model, history = train_model(model, nn.CrossEntropyLoss(), optimizer, make_scheduler(optimizer), data, 1,
                                 progress=False)
    assert history["best_epoch"] is None and history["best_acc"] == 0.0
    assert torch.equal(model.weight, initial)
