"""A small CNN on generated images, written on PyTorch's public API: not the tutorial, so that a diagnosis
(parity/diagnose.py) shows it assumes nothing of it. Its port is examples/small_cnn_port.rb.

    python examples/small_cnn.py [--epochs 3] [--seed 0]

Everything comes from the global generator seeded first: the images (noise, with a brighter square for
class 1), the weights, the shuffling and the flips. A Dataset of its own behind a shuffled DataLoader,
a Compose of tensor transforms, Conv2d-BatchNorm2d-ReLU-MaxPool2d-Linear, SGD with momentum, StepLR, and
an evaluation in eval mode after each epoch.
"""

import argparse

import torch
import torch.nn as nn
from torchvision import transforms

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.manual_seed(args.seed)


class Shapes(torch.utils.data.Dataset):
    """count 3x16x16 images in [0, 1.5): uniform noise, plus 0.5 on a centred 8x8 square for class 1."""

    def __init__(self, count, transform):
        self.images = torch.rand(count, 3, 16, 16)
        self.labels = torch.randint(0, 2, (count,))
        square = torch.zeros(1, 1, 16, 16)
        square[0, 0, 4:12, 4:12] = 0.5
        self.images = self.images + self.labels.view(-1, 1, 1, 1).float() * square
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index])


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 2)

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


normalize = transforms.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
train_set = Shapes(48, transforms.Compose([transforms.RandomHorizontalFlip(), normalize]))
val_set = Shapes(16, transforms.Compose([normalize]))
model = SmallCNN()
train_loader = torch.utils.data.DataLoader(train_set, batch_size=8, shuffle=True)
val_loader = torch.utils.data.DataLoader(val_set, batch_size=8)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)

for epoch in range(args.epochs):
    model.train()
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in val_loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    print(f"epoch {epoch}: last loss {loss.item():.4f}, val accuracy {correct / len(val_set):.3f}")
