"""What the known torch.rb 0.12 / torchvision-ruby 0.3 deviations look like in a diagnosis
(parity/diagnose.py), each with the pytorch_parity file that removes it.

The deviations themselves are the fixes room's: every file under ruby_port/lib/pytorch_parity/ with a
"Fix:" header says what upstream does ("Bug:"). Here is only how each one shows in two recorded runs,
its signature: an error the Ruby run stopped with, or a quantity that differs in a particular way. A
signature is only claimed when the Ruby run had not loaded the file that removes it. Some checks look at
the Ruby side alone (its own input and output of a transform), so they hold even when that input already
differed: such a divergence is independent of the ones before it. Fixes that change no value
(Normalize's, the tensors' memory, the functions that let their input go and Torch.load's reader: speed and memory
only) have no signature.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reference_py import ROOT

FIXES_ROOM = ROOT / "ruby_port" / "lib" / "pytorch_parity"
# Fixes whose effect is speed, memory or a file's bytes, never a value a run records: no run can show them
# (torch/save.rb's archive is compared with torch.save's byte for byte by parity/test_save.py).
WITHOUT_SIGNATURE = (
    "torch/load.rb",
    "torch/nn/functional.rb",
    "torch/save.rb",
    "torch/tensor_memory.rb",
    "torchvision/transforms/normalize.rb",
)


@dataclass
class Match:
    file: str  # under ruby_port/lib/pytorch_parity/
    evidence: str  # what in the runs matches
    independent: bool = False  # holds whatever happened before (a check on the Ruby side's own values)

    def header(self):
        return fix_header(self.file)


def fix_header(file):
    """The header fields (Fix, Bug, ...) of a pytorch_parity file, continuation lines joined."""
    fields, key = {}, None
    for line in (FIXES_ROOM / file).read_text().splitlines():
        if not line.startswith("#"):
            if fields:
                break
            continue
        text = line[1:]
        match = re.match(r" (Fix|Bug|Part of|Upstream gives|Python gives|In Python):\s*(.*)", text)
        if match:
            key = match.group(1)
            fields[key] = match.group(2)
        elif key in ("Fix", "Bug") and text.startswith("   "):
            fields[key] += " " + text.strip()
        else:
            key = None
    return fields


def fix_files():
    """Every file of the room with a Fix: header, as paths under pytorch_parity/."""
    return sorted(str(path.relative_to(FIXES_ROOM)) for path in FIXES_ROOM.rglob("*.rb")
                  if "Fix" in fix_header(path.relative_to(FIXES_ROOM)))


# An error the Ruby run stopped with: (file, error class, pattern of its message, pattern one of its
# backtrace's lines must match or None, what it shows).
STOPS = [
    ("torch/tensor/marshal.rb", "TypeError", r"no _dump_data is defined for class Torch::", None,
     "Marshal refused a tensor (a deep copy of a state dict)"),
    ("torch/utils/data/data_loader_workers.rb", "ArgumentError", r"unknown keywords?: .*:num_workers\b", None,
     "the DataLoader refused num_workers:"),
    ("torch/utils/data/data_loader_workers.rb", "NotImplementedError", r"num_workers above 0 needs", None,
     "the DataLoader has no worker processes"),
    ("torch/utils/data/data_loader.rb", "ArgumentError",
     r"unknown keywords?: .*:(sampler|batch_sampler|drop_last|generator|timeout|worker_init_fn|prefetch_factor)\b", None,
     "the DataLoader refused one of PyTorch's keywords"),
    ("torch/utils/data/random_sampler.rb", "NameError", r"uninitialized constant Torch::Utils::Data::RandomSampler", None,
     "torch.rb has no RandomSampler"),
    ("torch/utils/data/data_loader.rb", "NameError", r"uninitialized constant Torch::Utils::Data::(SequentialSampler|BatchSampler)",
     None, "torch.rb has no such sampler"),
    ("torch/num_threads.rb", "NoMethodError", r"undefined method `[gs]et_num_threads' for Torch", None,
     "torch.rb has no set_num_threads/get_num_threads"),
    ("torch/optim/optimizer.rb", "NoMethodError", r"undefined method `state' for #<Torch::Optim::", None,
     "the optimizer's state is not readable"),
    ("torchvision/transforms/to_tensor.rb", "ArgumentError", r"pic should be Vips::Image or Numo::NArray\. Got Torch::Tensor",
     None, "ToTensor refused an image given as a uint8 tensor"),
    ("torchvision/transforms/functional.rb", "RuntimeError", r"img should be Vips::Image\. Got Torch::Tensor", None,
     "a transform refused an image given as a uint8 tensor: torchvision-ruby's functions take libvips images only"),
    ("torchvision/transforms/random_resized_crop.rb", "ArgumentError", r"No matching signatures",
     r"torchvision/transforms/random_resized_crop\.rb", "RandomResizedCrop's crop offsets came out as floats "
     "(torchvision-ruby draws them with torch.rb's randint, which makes float32 unless told)"),
    ("torchvision/datasets/image_folder.rb", "ArgumentError", r"unknown keywords?: .*:loader\b", None,
     "ImageFolder refused loader:"),
    ("torchvision/datasets/image_folder.rb", "RuntimeError",
     r"output with shape \[1, \d+, \d+\] doesn't match the broadcast shape \[3, \d+, \d+\]", None,
     "a grayscale file's one band (ImageFolder keeps it) met a transform made for RGB"),
    ("torchvision/datasets/image_folder.rb", "RuntimeError",
     r"The size of tensor a \(4\) must match the size of tensor b \(3\) at non-singleton dimension 0", None,
     "a CMYK file's four bands (ImageFolder keeps them) met a transform made for RGB"),
    ("torchvision/transforms/center_crop.rb", "NoMethodError", r"undefined method `pad' for", None,
     "CenterCrop called a pad it does not have"),
]


def stopped(error, fixes):
    """The deviation an error of the Ruby run is the signature of, or None."""
    text = error.get("message", "")
    backtrace = "\n".join(error.get("backtrace", []))
    for file, error_class, pattern, where, shows in STOPS:
        if error.get("class") == error_class and re.search(pattern, text) and \
                (where is None or re.search(where, backtrace)) and loaded(file, fixes) is not True:
            return Match(file, f"the run stopped with {error_class}: {text} ({shows})", independent=True)
    return None


def loaded(file, fixes):
    """Whether the Ruby run loaded the file (None: the run did not say)."""
    return None if fixes is None else file in fixes


def data_order(python_loader, ruby_loader, fixes):
    """A shuffled loader whose order differs: torch.rb 0.12's DataLoader shuffles with randperm on the
    global generator, PyTorch's RandomSampler with a generator seeded from one draw of it."""
    if python_loader.get("shuffle") and ruby_loader.get("shuffle") and loaded("torch/utils/data/data_loader.rb", fixes) is not True:
        return Match("torch/utils/data/data_loader.rb", "a shuffled loader's order differs from its first pass on")
    return None


def dataset_size(python_loader, ruby_loader, fixes):
    if "ImageFolder" in (python_loader.get("dataset"), ruby_loader.get("dataset")) and \
            loaded("torchvision/datasets/image_folder.rb", fixes) is not True:
        return Match("torchvision/datasets/image_folder.rb", "the ImageFolder finds another number of images", True)
    return None


def loaded_image(python_image, ruby_image, dataset, fixes):
    """The image the dataset handed to the Compose: bands or pixels otherwise than PIL's loader."""
    if dataset != "ImageFolder" or loaded("torchvision/datasets/image_folder.rb", fixes) is True:
        return None
    if python_image.shape[:2] == ruby_image.shape[:2] and python_image.shape != ruby_image.shape:
        return Match("torchvision/datasets/image_folder.rb",
                     f"the file loaded with {ruby_image.shape[-1]} band(s) where PIL's loader gives {python_image.shape[-1]}", True)
    if python_image.shape == ruby_image.shape:
        return Match("torchvision/datasets/image_folder.rb", "the same file decoded to other pixels than PIL's")
    return None


def transform(name, python_in, python_out, ruby_in, ruby_out, fixes):
    """A transform of the first sample whose output differs; python_in/ruby_in: each side's input
    (uint8 [height, width, bands] images, or None when not an image)."""
    same_input = python_in is not None and ruby_in is not None and python_in.shape == ruby_in.shape and torch.equal(python_in, ruby_in)
    if name == "Resize" and ruby_in is not None:
        return _resize(python_out, ruby_in, ruby_out, fixes)
    if name == "CenterCrop" and ruby_in is not None:
        return _center_crop(ruby_in, ruby_out, fixes)
    if name == "RandomResizedCrop" and same_input and loaded("torchvision/transforms/functional.rb", fixes) is not True:
        return Match("torchvision/transforms/functional.rb",
                     "RandomResizedCrop made other pixels from the same image: torchvision-ruby resizes the crop with "
                     "libvips' filter (its crop's rounding, random_resized_crop.rb, may also take part)")
    if name == "RandomHorizontalFlip" and same_input and python_out.shape == ruby_out.shape and \
            torch.equal(ruby_out, python_out.flip(1)) and loaded("torchvision/transforms/random_horizontal_flip.rb", fixes) is not True:
        return Match("torchvision/transforms/random_horizontal_flip.rb",
                     "the flip decided otherwise on the same image (or the random draws were out of step)")
    return None


def _resize(python_out, ruby_in, ruby_out, fixes):
    """torchvision's Resize(size): the short side becomes size, the long one int(size * long / short),
    resampled by PIL's bilinear filter. Checked on the Ruby side's own input."""
    size = min(python_out.shape[:2])
    height, width = ruby_in.shape[:2]
    short, long = min(height, width), max(height, width)
    wanted = (size, int(size * long / short)) if height <= width else (int(size * long / short), size)
    if tuple(ruby_out.shape[:2]) != wanted and loaded("torchvision/transforms/resize.rb", fixes) is not True:
        return Match("torchvision/transforms/resize.rb",
                     f"Resize made {ruby_out.shape[1]}x{ruby_out.shape[0]} of a {width}x{height} image, where torchvision "
                     f"makes {wanted[1]}x{wanted[0]}", True)
    if tuple(ruby_out.shape[:2]) == wanted and loaded("torchvision/transforms/functional.rb", fixes) is not True:
        pil = _pil_resize(ruby_in, wanted)
        if pil is not None and not np.array_equal(pil, ruby_out.numpy()):
            return Match("torchvision/transforms/functional.rb",
                         "Resize's pixels are not PIL's bilinear resampling of its own input", True)
    return None


def _pil_resize(image, size):
    from PIL import Image

    array = image.numpy()
    if array.dtype != np.uint8 or array.shape[-1] not in (1, 3, 4):
        return None
    picture = Image.fromarray(array[:, :, 0] if array.shape[-1] == 1 else array)
    resized = np.asarray(picture.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return resized[:, :, None] if resized.ndim == 2 else resized


def _center_crop(ruby_in, ruby_out, fixes):
    """torchvision's CenterCrop offsets are int(round((W - w) / 2.0)): Python's round, half to even."""
    if loaded("torchvision/transforms/center_crop.rb", fixes) is True or ruby_out.dim() != 3:
        return None
    (height, width), (h, w) = ruby_in.shape[:2], ruby_out.shape[:2]
    if h > height or w > width:
        return None
    even = (int(round((height - h) / 2.0)), int(round((width - w) / 2.0)))
    up = (int((height - h) / 2.0 + 0.5), int((width - w) / 2.0 + 0.5))
    crop = ruby_in[up[0]:up[0] + h, up[1]:up[1] + w]
    if up != even and crop.shape == ruby_out.shape and torch.equal(crop, ruby_out):
        return Match("torchvision/transforms/center_crop.rb",
                     f"CenterCrop cut its own input at offset {up} (rounding half up) where torchvision cuts at {even}", True)
    return None


def learning_rate(scheduler_class, ruby_lr, python_lr, fixes):
    """StepLR in closed form (base_lr * gamma ** (epoch // step_size)) against PyTorch's chained products: a few ulps."""
    if scheduler_class == "StepLR" and python_lr and abs(ruby_lr - python_lr) <= 1e-12 * abs(python_lr) and \
            loaded("torch/optim/lr_scheduler/step_lr.rb", fixes) is not True:
        return Match("torch/optim/lr_scheduler/step_lr.rb",
                     f"StepLR's rate {ruby_lr!r} where PyTorch's is {python_lr!r}", True)
    return None


def batch_counts(differing_keys, ruby_before, ruby_after, fixes):
    """BatchNorm's num_batches_tracked left where it was by a training forward."""
    counts = [key for key in differing_keys if key.endswith("num_batches_tracked")]
    if counts and all(key in ruby_before and torch.equal(ruby_before[key], ruby_after[key]) for key in counts) and \
            loaded("torch/nn/batch_norm2d.rb", fixes) is not True:
        return Match("torch/nn/batch_norm2d.rb", f"{len(counts)} BatchNorm num_batches_tracked left as they were by a "
                                                 f"training forward", True)
    return None
