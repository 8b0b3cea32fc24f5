# License: BSD
# Author: Sasank Chilamkurthy
"""PyTorch's "Transfer Learning for Computer Vision" tutorial, the finetuning part, as on the page
(https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html).

    python examples/tutorial.py --data-dir data/hymenoptera_data --weights net.pth --out-dir runs/examples/python

What differs from the page, only what running it here needs:
- options for the data folder, the weights, the epochs, the DataLoader's workers, StepLR's step size, the
  seed (`torch.manual_seed(seed)` first, nothing else) and an output folder;
- the ImageNet weights cannot be downloaded here: models.resnet18() loads them from --weights (a state
  dict such as the project's net.pth, `python reference_py/pretrained.py`);
- train_model also keeps each epoch's learning rate, losses and accuracies; the folder gets them as
  curves.json (full-precision numbers) and the best weights as best.pth;
- the page's figures (imshow, visualize_model) and its second part (ConvNet as fixed feature extractor)
  are left out.
"""

import argparse
import copy
import json
import os
import time

import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler
from torchvision import datasets, models, transforms

cudnn.benchmark = True

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--data-dir", default="data/hymenoptera_data", help="train/ and val/, one folder per class")
parser.add_argument("--weights", default="net.pth", help="ResNet-18's ImageNet state dict")
parser.add_argument("--epochs", type=int, default=25)
parser.add_argument("--workers", type=int, default=4, help="the DataLoaders' num_workers")
parser.add_argument("--step-size", type=int, default=7, help="StepLR: decay the learning rate every N epochs")
parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed, before anything else")
parser.add_argument("--out-dir", default="runs/examples/python", help="where curves.json and best.pth go")
args = parser.parse_args()

torch.manual_seed(args.seed)

# Data augmentation and normalization for training
# Just normalization for validation
data_transforms = {
    'train': transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    ]),
    'val': transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    ]),
}

data_dir = args.data_dir
image_datasets = {x: datasets.ImageFolder(os.path.join(data_dir, x),
                                          data_transforms[x])
                  for x in ['train', 'val']}
dataloaders = {x: torch.utils.data.DataLoader(image_datasets[x], batch_size=4,
                                             shuffle=True, num_workers=args.workers)
               for x in ['train', 'val']}
dataset_sizes = {x: len(image_datasets[x]) for x in ['train', 'val']}
class_names = image_datasets['train'].classes

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def train_model(model, criterion, optimizer, scheduler, num_epochs=25):
    since = time.time()

    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    curves = []  # added: each epoch's learning rate, losses and accuracies

    for epoch in range(num_epochs):
        print(f'Epoch {epoch}/{num_epochs - 1}')
        print('-' * 10)
        record = {'epoch': epoch, 'lr': optimizer.param_groups[0]['lr']}

        # Each epoch has a training and validation phase
        for phase in ['train', 'val']:
            if phase == 'train':
                model.train()  # Set model to training mode
            else:
                model.eval()   # Set model to evaluate mode

            running_loss = 0.0
            running_corrects = 0

            # Iterate over data.
            for inputs, labels in dataloaders[phase]:
                inputs = inputs.to(device)
                labels = labels.to(device)

                # zero the parameter gradients
                optimizer.zero_grad()

                # forward
                # track history if only in train
                with torch.set_grad_enabled(phase == 'train'):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)

                    # backward + optimize only if in training phase
                    if phase == 'train':
                        loss.backward()
                        optimizer.step()

                # statistics
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == 'train':
                scheduler.step()

            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]

            print(f'{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}')
            record[f'{phase}_loss'] = epoch_loss
            record[f'{phase}_acc'] = epoch_acc.item()

            # deep copy the model
            if phase == 'val' and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())

        curves.append(record)
        print()

    time_elapsed = time.time() - since
    print(f'Training complete in {time_elapsed // 60:.0f}m {time_elapsed % 60:.0f}s')
    print(f'Best val Acc: {best_acc:4f}')

    # load best model weights
    model.load_state_dict(best_model_wts)
    return model, {'epochs': curves, 'best_acc': float(best_acc)}


# Finetuning the convnet
model_ft = models.resnet18()
model_ft.load_state_dict(torch.load(args.weights, weights_only=True))
num_ftrs = model_ft.fc.in_features
# Here the size of each output sample is set to 2.
# Alternatively, it can be generalized to nn.Linear(num_ftrs, len(class_names)).
model_ft.fc = nn.Linear(num_ftrs, 2)

model_ft = model_ft.to(device)

criterion = nn.CrossEntropyLoss()

# Observe that all parameters are being optimized
optimizer_ft = optim.SGD(model_ft.parameters(), lr=0.001, momentum=0.9)

# Decay LR by a factor of 0.1 every 7 epochs
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=args.step_size, gamma=0.1)

# Train and evaluate
model_ft, history = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler,
                                num_epochs=args.epochs)

os.makedirs(args.out_dir, exist_ok=True)
with open(os.path.join(args.out_dir, 'curves.json'), 'w') as f:
    json.dump(history, f, indent=1)
torch.save(model_ft.state_dict(), os.path.join(args.out_dir, 'best.pth'))
