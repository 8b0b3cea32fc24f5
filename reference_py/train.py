"""Train ResNet-18 on ants vs bees, as PyTorch's "Transfer Learning for Computer Vision" tutorial does.

    python reference_py/train.py --strategy finetune --epochs 25 --lr 0.001 --momentum 0.9 \
        --data-dir DIR --weights net.pth --seed 0 --out-dir runs/train/python

Writes OUT_DIR/STRATEGY/: curves.json, config.json (every option's value), curves.png, train_grid.png,
predictions.png, best.pth, and with --record the record/ bundles. The loop is train_model, built from
train_one_epoch and evaluate as torchvision's references/classification/train.py builds its main;
reference_py/replay.py drives the same three functions on the fixtures' batches.
"""

import copy
import json
import math
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tqdm import tqdm

# Only what checking the options and claiming the out-dir need: LibTorch, torchvision and matplotlib load once
# they pass (main's threads.configure), imported by the functions below that use them, so a bad option or
# out-dir is refused at once.
from reference_py import STANDIN_DIR, output_claim, recipe, threads
from reference_py.arguments import ArgumentParser
from reference_py.errors import UserError, check_count, check_rate, check_seed, check_workers, run_cli
from reference_py.observer import NO_OBSERVER

def train_one_epoch(model, criterion, optimizer, data_loader, observer=NO_OBSERVER, desc=None):
    """The tutorial's training phase: one pass over `data_loader` in train mode. Returns (loss, accuracy)."""
    import torch

    model.train()
    running_loss = 0.0
    running_corrects = 0
    seen = 0
    batches = data_loader if desc is None else tqdm(data_loader, desc=desc, file=sys.stderr, leave=False)
    for inputs, labels in batches:
        optimizer.zero_grad()
        outputs = model(inputs)
        _, preds = torch.max(outputs, 1)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        observer.after_step(model, optimizer, inputs, labels, loss)
        running_loss += loss.item() * inputs.size(0)
        running_corrects += int(torch.sum(preds == labels.data))
        seen += inputs.size(0)
    return running_loss / seen, running_corrects / seen


def evaluate(model, criterion, data_loader, observer=NO_OBSERVER):
    """The tutorial's validation phase: eval mode, no grad. Returns (loss, accuracy)."""
    import torch

    model.eval()
    running_loss = 0.0
    running_corrects = 0
    seen = 0
    with torch.no_grad():
        for inputs, labels in data_loader:
            outputs = model(inputs)
            _, preds = torch.max(outputs, 1)
            loss = criterion(outputs, labels)
            observer.after_eval_batch(outputs)
            running_loss += loss.item() * inputs.size(0)
            running_corrects += int(torch.sum(preds == labels.data))
            seen += inputs.size(0)
    return running_loss / seen, running_corrects / seen


def train_model(model, criterion, optimizer, scheduler, dataloaders, num_epochs=25, progress=True,
                observer=NO_OBSERVER):
    """The tutorial's loop: train then val each epoch, StepLR after training, keep the best val weights.

    Returns the model holding the best weights and the history (per-epoch metrics, best epoch).
    """
    since = time.time()
    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    best_epoch = None
    epochs = []

    for epoch in range(num_epochs):
        print(f"Epoch {epoch}/{num_epochs - 1}")
        print("-" * 10)
        record = {"epoch": epoch, "lr": [group["lr"] for group in optimizer.param_groups]}

        record["train_loss"], record["train_acc"] = train_one_epoch(
            model, criterion, optimizer, dataloaders["train"], observer, desc=f"epoch {epoch}" if progress else None)
        scheduler.step()
        print(f"train Loss: {record['train_loss']:.4f} Acc: {record['train_acc']:.4f}")

        record["val_loss"], record["val_acc"] = evaluate(model, criterion, dataloaders["val"], observer)
        print(f"val Loss: {record['val_loss']:.4f} Acc: {record['val_acc']:.4f}")
        if record["val_acc"] > best_acc:
            best_acc = record["val_acc"]
            best_epoch = epoch
            best_model_wts = copy.deepcopy(model.state_dict())
        epochs.append(record)
        observer.after_epoch(epoch, model, optimizer)
        print()

    time_elapsed = time.time() - since
    print(f"Training complete in {time_elapsed // 60:.0f}m {time_elapsed % 60:.0f}s")
    print(f"Best val Acc: {best_acc:4f}")

    model.load_state_dict(best_model_wts)
    return model, {"epochs": epochs, "best_epoch": best_epoch, "best_acc": best_acc, "seconds": time_elapsed}


def load_backbone(strategy, weights_arg):
    """The pretrained weights the strategy starts from (None for scratch); ./net.pth (./vgg16.pth) is made when missing."""
    from reference_py.pretrained import DEFAULT_PATHS, load_or_make
    from reference_py.strategies import architecture, uses_pretrained

    arch = architecture(strategy)
    return load_or_make(weights_arg, DEFAULT_PATHS[arch], arch) if uses_pretrained(strategy) else None


def curves(args, weights, data_dir, standin, thread_count, history, data_order):
    from reference_py import runtime_info

    return {
        "side": "python",
        "strategy": args.strategy,
        "weights": weights.summary() if weights else {"provenance": "none", "sha256": None, "path": None},
        "data": {"dir": str(data_dir), "standin": standin},
        "seed": args.seed,
        "threads": thread_count,
        "stack": runtime_info.describe(thread_count),
        "epochs": history["epochs"],
        "best_epoch": history["best_epoch"],
        "best_acc": history["best_acc"],
        "data_order": {"train": data_order},
        "seconds": history["seconds"],
    }


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, setting in recipe.SETTINGS.items():
        parser.add_argument(recipe.flag(name), type={"int": int, "float": float}.get(setting.type),
                            choices=recipe.choices(name), default=setting.default, help=recipe.help_text(name))
    parser.add_argument("--data-dir", help="hymenoptera_data's layout (default: the generated stand-in)")
    parser.add_argument("--weights", help=recipe.weights_help())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/train/python")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--record", action="store_true",
                        help="also write OUT_DIR/STRATEGY/record/: every step's loss, the first batch, its gradients, "
                             "the momentum buffers after the first step and at the end (tensor bundles)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as JSON and exit without training")
    return parser


def resolved_config(args, thread_count):
    """Every option with the value this run uses, defaults included, under the names both trainers share."""
    from reference_py.pretrained import DEFAULT_PATHS
    from reference_py.strategies import architecture, uses_pretrained

    config = {key: value for key, value in vars(args).items() if key not in ("no_progress", "print_config")}
    config["progress"] = not args.no_progress
    config["weights"] = ((args.weights or str(DEFAULT_PATHS[architecture(args.strategy)]))
                         if uses_pretrained(args.strategy) else None)
    config["threads"] = thread_count
    return dict(sorted(config.items()))


COUNTS = recipe.COUNTS
RATES = recipe.RATES


def check_args(args):
    """Every option in its range, before anything is read or written (train.rb's check_options)."""
    for name in COUNTS:
        check_count(getattr(args, name), "--" + name.replace("_", "-"))
    for name in RATES:
        check_rate(getattr(args, name), "--" + name.replace("_", "-"))
    check_workers(args.workers)
    check_seed(args.seed)
    output_claim.check_path_option(args.out_dir, "--out-dir")
    for option in ("data_dir", "weights"):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            raise UserError(f"--{option.replace('_', '-')} \"\": expected a path; leave the option out for the default")
    check_out_dir_outside_data(args.out_dir, args.data_dir or str(STANDIN_DIR))


def check_out_dir_outside_data(out_dir, data_dir):
    """The results (their PNGs are images to ImageFolder) never go into the data dir the next run trains on."""
    if output_claim.inside(out_dir, data_dir):
        raise UserError(f"--out-dir {out_dir} is inside the data dir {data_dir}, where the next run would train on "
                        f"this run's plots; choose a folder outside the data dir")


def check_inputs(args):
    """The weights file and the data dir, as far as they can be checked before LibTorch loads (train.rb's twin): the
    weights file is there and not empty, the data dir has hymenoptera_data's layout and only files ImageFolder can
    read. Their contents (the tensors, the images) are checked once it has loaded; the default weights when
    missing, and the stand-in, are made then."""
    from reference_py.data_layout import check_layout
    from reference_py.strategies import architecture, uses_pretrained
    from reference_py.weights import check_file

    if uses_pretrained(args.strategy):
        path = args.weights or recipe.WEIGHTS[architecture(args.strategy)]
        if args.weights is not None or Path(path).exists():
            check_file(path)
    if args.data_dir is not None:
        check_layout(args.data_dir)


def json_safe(value):
    """`value` for JSON: a number that is not finite (a diverged loss) becomes null, as JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def diverged_epoch(epochs):
    """The first epoch whose loss is not finite, or None."""
    return next((e["epoch"] for e in epochs if not all(map(math.isfinite, (e["train_loss"], e["val_loss"])))), None)


def output_dir(args):
    """OUT_DIR/STRATEGY, claimed (checked and locked) before the training starts."""
    return output_claim.OutputDir(Path(args.out_dir) / args.strategy, "train", "--out-dir", signature="curves.json")


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_args(args)
    if args.print_config:
        print(json.dumps(resolved_config(args, threads.configure()), indent=1))
        return
    with output_dir(args) as output:  # claimed before LibTorch loads: an out-dir we may not use costs nothing
        check_inputs(args)
        thread_count = threads.configure()  # LibTorch loads here, once the options, out-dir and inputs are checked
        train_and_write(args, resolved_config(args, thread_count), thread_count, output)
    print(f"train: wrote {output.target}", file=sys.stderr)


def train_and_write(args, config, thread_count, output):
    import torch
    from torch import nn

    from reference_py import visualize
    from reference_py.data import describe, load_data, resolve_data_dir
    from reference_py.observer import Recorder
    from reference_py.strategies import build_model, make_optimizer, make_scheduler
    from reference_py.tensor_io import write_bundle
    from reference_py.weights import save_state_dict

    weights = load_backbone(args.strategy, args.weights)
    data_dir, standin = resolve_data_dir(args.data_dir)
    _, dataloaders, dataset_sizes, class_names = load_data(data_dir, args.batch_size, args.seed, args.workers)
    print(f"data: {describe(data_dir, standin, dataset_sizes, class_names)}", file=sys.stderr)

    torch.manual_seed(args.seed)
    model = build_model(args.strategy, weights.state_dict if weights else None, len(class_names))
    criterion = nn.CrossEntropyLoss()
    optimizer = make_optimizer(args.strategy, model, args.lr, args.momentum, args.backbone_lr, args.head_lr)
    scheduler = make_scheduler(optimizer, args.step_size, args.gamma)
    recorder = Recorder() if args.record else NO_OBSERVER
    model, history = train_model(model, criterion, optimizer, scheduler, dataloaders, args.epochs,
                                 progress=not args.no_progress, observer=recorder)
    data_order = list(dataloaders["train"].sampler.orders)

    record = curves(args, weights, data_dir, standin, thread_count, history, data_order)
    diverged = diverged_epoch(record["epochs"])
    if diverged is not None:
        print(f"train: warning: the loss is not finite from epoch {diverged} on (the training diverged); "
              f"curves.json records null there: lower the learning rate", file=sys.stderr)
    with output.write() as out:
        (out / "curves.json").write_text(json.dumps(json_safe(record), indent=1, allow_nan=False) + "\n")
        (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        if args.record:
            (out / "record").mkdir()
            recorder.write(out / "record")
            write_bundle(out / "record" / "best_state", model.state_dict())  # best.pth's tensors, as a bundle
        save_state_dict(out / "best.pth", model.state_dict())
        visualize.plot_curves(record["epochs"], out / "curves.png")
        visualize.save_train_grid(dataloaders["train"], class_names, out / "train_grid.png")
        visualize.visualize_model(model, dataloaders["val"], class_names, out / "predictions.png")


if __name__ == "__main__":
    run_cli(main)
