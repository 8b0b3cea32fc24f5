"""The tutorial's pictures, written to PNG files (matplotlib's Agg backend, no window); matplotlib is
loaded when first drawing (visualize.rb's twin), not by every command that imports this module."""

import functools

import numpy as np
import torch
import torchvision

from reference_py import atomic
from reference_py.data import MEAN, STD


@functools.cache
def plt():
    """matplotlib.pyplot on its Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def imshow(inp, title=None, ax=None):
    """Display image for Tensor (undoing Normalize)."""
    ax = ax or plt().gca()
    inp = inp.numpy().transpose((1, 2, 0))
    inp = np.array(STD) * inp + np.array(MEAN)
    inp = np.clip(inp, 0, 1)
    ax.imshow(inp)
    if title is not None:
        ax.set_title(title)


def save_figure(fig, path):
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt().close(fig)


def save_train_grid(dataloader, class_names, path):
    """A batch of training data as one grid, titled with its classes."""
    inputs, classes = next(iter(dataloader))
    out = torchvision.utils.make_grid(inputs)
    fig = plt().figure(figsize=(12, 4))
    imshow(out, title=[class_names[x] for x in classes])
    plt().axis("off")
    save_figure(fig, path)


def visualize_model(model, dataloader, class_names, path, num_images=6):
    """Validation images with the model's predicted labels."""
    was_training = model.training
    model.eval()
    images_so_far = 0
    fig = plt().figure(figsize=(6, 3 * ((num_images + 1) // 2)))
    with torch.no_grad():
        for inputs, _labels in dataloader:
            outputs = model(inputs)
            _, preds = torch.max(outputs, 1)
            for j in range(inputs.size()[0]):
                images_so_far += 1
                ax = plt().subplot((num_images + 1) // 2, 2, images_so_far)
                ax.axis("off")
                ax.set_title(f"predicted: {class_names[preds[j]]}")
                imshow(inputs.cpu().data[j], ax=ax)
                if images_so_far == num_images:
                    break
            if images_so_far == num_images:
                break
    model.train(mode=was_training)
    save_figure(fig, path)


def plot_curves(epochs, path):
    """Loss, accuracy and learning rate per epoch, from curves.json's `epochs`."""
    x = [e["epoch"] for e in epochs]
    fig, (loss_ax, acc_ax, lr_ax) = plt().subplots(1, 3, figsize=(15, 4))
    for phase in ("train", "val"):
        loss_ax.plot(x, [e[f"{phase}_loss"] for e in epochs], marker="o", label=phase)
        acc_ax.plot(x, [e[f"{phase}_acc"] for e in epochs], marker="o", label=phase)
    for group in range(len(epochs[0]["lr"]) if epochs else 0):
        lr_ax.plot(x, [e["lr"][group] for e in epochs], marker="o", label=f"group {group}")
    lr_ax.set_yscale("log")
    for ax, title in ((loss_ax, "loss"), (acc_ax, "accuracy"), (lr_ax, "learning rate")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
