"""net.pth: loading and checking the backbone's weights, and reading where they came from.

net.pth is a plain dict of tensors (ResNet-18 with its 1000-class ImageNet fc), so that torch.rb's
Torch.load reads it too. Beside it, net.pth.json says whether it holds torchvision's ImageNet
weights or the seeded stand-in (reference_py/pretrained.py writes both). torch and torchvision are imported
by the functions that need them: the trainers check that the weights file is there (check_file) before
LibTorch loads.
"""

import contextlib
import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from reference_py import atomic
from reference_py.checksums import file_sha256
from reference_py.errors import UserError, json_type, read_json

PROVENANCES = ("imagenet", "stand-in", "user-supplied")
OPTIONAL_SUFFIX = "num_batches_tracked"  # absent from torchvision's published checkpoint
# Elements checked for finiteness at a time: torch.isfinite(tensor) makes temporaries of the tensor's size (VGG-16's
# first Linear: 400 MB of them, each page a fault); a chunk's are reused. VGG-16's 138M values: 2.8 -> 0.4 CPU-s.
FINITE_CHUNK = 1 << 20


def fresh_path(path):
    """A sibling of `path` that does not exist: net.pth -> net-1.pth (advice must never overwrite a file)."""
    path = Path(path)
    k = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not candidate.exists() and not provenance_path(candidate).exists():
            return candidate
        k += 1


def fix_for(path):
    """How to get usable weights instead of `path`: create it when missing, else a new file beside it."""
    path = Path(path)
    if not path.exists() and not provenance_path(path).exists():
        return f"create it with `python reference_py/pretrained.py --out {path}`"
    new = fresh_path(path)
    return (f"make a new file with `python reference_py/pretrained.py --out {new}` (add --weights FILE for "
            f"downloaded ImageNet weights) and pass --weights {new}")


@dataclass
class Loaded:
    """The weights a run starts from, as load_weights returns them (Ruby: Weights::Loaded)."""

    state_dict: dict
    provenance: str
    sha256: str
    path: Path

    def describe(self):
        return f"{self.provenance} weights (sha256 {self.sha256[:12]}) from {self.path}"

    def summary(self):
        """What curves.json and the fixtures' manifest record about the weights."""
        return {"provenance": self.provenance, "sha256": self.sha256, "path": str(self.path)}


ARCHITECTURES = {"resnet18": "ResNet-18 state dict with a 1000-class fc",
                 "vgg16": "VGG-16 state dict with a 1000-class classifier"}  # the backbones the strategies load
# torchvision 0.14's ResNet18_Weights.IMAGENET1K_V1.url and VGG16_Weights.IMAGENET1K_V1.url (torchvision-ruby's
# MODEL_URLS name the same files), written out as importing torchvision loads LibTorch; test_weights.py keeps them so.
IMAGENET_URLS = {"resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                 "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth"}


def hub_file(arch="resnet18"):
    """torchvision's file of ImageNet weights for `arch` (resnet18-f37072fd.pth)."""
    return Path(IMAGENET_URLS[arch]).name


def hub_sha256_prefix(arch="resnet18"):
    """The digits in hub_file's name: torch.hub checks that the file's sha256 starts with them."""
    return re.search(r"-([0-9a-f]+)\.", hub_file(arch)).group(1)


@contextlib.contextmanager
def uninitialised():
    """Modules built inside keep their parameters as allocated: torch.nn.init's fills do nothing, and draw nothing
    from the generator. For a model whose values are never read, or all replaced: built to read the names, shapes
    and dtypes of its entries, VGG-16 wrote (and paged in) all its 138M values, 2.4 CPU-s."""
    from torch.nn import init

    fills = {name: getattr(init, name) for name in dir(init) if name.endswith("_") and not name.startswith("_")}
    for name in fills:
        setattr(init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fill in fills.items():
            setattr(init, name, fill)


@functools.lru_cache(maxsize=len(ARCHITECTURES))
def expected_entries(arch="resnet18"):
    """Name -> (shape, dtype) of every entry of torchvision's `arch` (1000 classes), in state_dict() order."""
    import torchvision

    with uninitialised():
        model = getattr(torchvision.models, arch)(weights=None)
    return {name: (tuple(tensor.shape), tensor.dtype) for name, tensor in model.state_dict().items()}


def expected_shapes(arch="resnet18"):
    """Name -> shape of every entry of torchvision's `arch` (1000 classes), in state_dict() order."""
    return {name: shape for name, (shape, _) in expected_entries(arch).items()}


def dtype_name(dtype):
    """A dtype as both sides write it (float16, not torch.float16)."""
    return str(dtype).removeprefix("torch.")


def save_state_dict(path, state_dict):
    """torch.save a plain dict of tensors (torch.rb's Torch.load reads it), atomically.

    Through the open file, as Ruby's save_state_dict: torch.save names the archive after a path it is given, here
    the temporary file's random name, which would make the bytes differ from run to run; a file is "archive". Each
    tensor is written as it goes, not gathered in memory first (a buffer of VGG-16's 553 MB: 2.6 CPU-s of faults).
    """
    import torch

    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save({name: tensor for name, tensor in state_dict.items()}, file)


def provenance_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def check_file(path, fix=None):
    """A regular file that is not empty, what read_state_dict checks before torch.load (the trainers check it
    before LibTorch loads)."""
    path = Path(path)
    fix = fix or fix_for(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found (nothing there, or not a regular file); {fix}")
    if path.stat().st_size == 0:  # torch.load's own message for it is empty
        raise UserError(f"{path} is empty (0 bytes), not a PyTorch checkpoint (an interrupted copy or download?); {fix}")


def read_state_dict(path, fix=None):
    """torch.load a checkpoint of tensors only (weights_only); any failure is the user's to fix."""
    import torch

    path = Path(path)
    fix = fix or fix_for(path)
    check_file(path, fix)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load of arbitrary bytes fails in many ways, all "unreadable"
        raise UserError(f"{path} is not a readable PyTorch checkpoint of tensors ({error}); "
                        f"{fix}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors (a state dict); {fix}")
    return dict(loaded)


def validate(state_dict, path, fix=None, arch="resnet18"):
    """Check names and shapes against `arch` with a 1000-class head (num_batches_tracked may be absent)."""
    shapes = expected_shapes(arch)
    missing = [k for k in shapes if k not in state_dict and not k.endswith(OPTIONAL_SUFFIX)]
    unexpected = [k for k in state_dict if k not in shapes]
    wrong = [f"{k} {list(state_dict[k].shape)} (expected {list(shapes[k])})"
             for k in state_dict if k in shapes and tuple(state_dict[k].shape) != shapes[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing entries (first: {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected entries (first: {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"wrong shapes: {'; '.join(wrong[:3])}")
    if problems:
        raise UserError(f"{path} is not a {ARCHITECTURES[arch]}: {', '.join(problems)}; "
                        f"{fix or fix_for(path)}")
    check_values(state_dict, path, fix, arch)


def all_finite(tensor):
    """Whether no element of `tensor` is NaN or infinite, FINITE_CHUNK elements at a time."""
    import torch

    return all(bool(torch.isfinite(chunk).all()) for chunk in tensor.reshape(-1).split(FINITE_CHUNK))


def check_values(state_dict, path, fix=None, arch="resnet18", stream=None):
    """Weights that are NaN or infinite refused (they train to NaN); entries of another dtype than the model's,
    which loading converts, said in one line on `stream`."""
    not_finite = [k for k, tensor in state_dict.items() if tensor.is_floating_point() and not all_finite(tensor)]
    if not_finite:
        raise UserError(f"{path}: {len(not_finite)} of its {len(state_dict)} entries hold NaN or infinite values "
                        f"(first: {', '.join(not_finite[:3])}); these weights cannot train: {fix or fix_for(path)}")
    entries = expected_entries(arch)
    converted = {}
    for name, tensor in state_dict.items():
        wanted = entries[name][1]
        if tensor.dtype != wanted:
            converted.setdefault((dtype_name(tensor.dtype), dtype_name(wanted)), []).append(name)
    if converted:
        kinds = ", ".join(f"{len(names)} {was} to {now} (first: {names[0]})" for (was, now), names in converted.items())
        print(f"weights: {path}: entries converted to the model's dtype as they load: {kinds}", file=stream or sys.stderr)


def read_provenance(path):
    """net.pth.json, checked against the file it describes."""
    path = Path(path)
    record_path = provenance_path(path)
    record = read_json(record_path, fix_for(path), missing=f"not found, so the origin of {path} is unknown")
    if not isinstance(record, dict):
        raise UserError(f"{record_path} holds a JSON {json_type(record)}, not an object with provenance and sha256; "
                        f"{fix_for(path)}")
    if record.get("provenance") not in PROVENANCES:
        raise UserError(f"{record_path}: provenance {json.dumps(record.get('provenance'))} is not one of "
                        f"{', '.join(PROVENANCES)}; {fix_for(path)}")
    return record


def written_by_pretrained(path):
    """Whether net.pth (and net.pth.json) are pretrained.py's unchanged output, which it may replace."""
    path = Path(path)
    try:
        record = json.loads(provenance_path(path).read_text())
        return isinstance(record, dict) and path.is_file() and record.get("sha256") == file_sha256(path)
    except (OSError, ValueError):
        return False


def load_weights(path, arch="resnet18"):
    """Load net.pth (of `arch`), check it and its provenance; returns a Loaded."""
    path = Path(path)
    state_dict = read_state_dict(path)
    validate(state_dict, path, arch=arch)
    record = read_provenance(path)
    sha256 = file_sha256(path)
    if record.get("sha256") != sha256:
        raise UserError(f"{path} (sha256 {sha256[:12]}) is not the file {provenance_path(path)} describes "
                        f"(sha256 {str(record.get('sha256'))[:12]}); {fix_for(path)}")
    check_imagenet_label(record, path, arch)
    return Loaded(state_dict, record["provenance"], sha256, path)


def check_imagenet_label(record, path, arch="resnet18"):
    """"imagenet" only for weights made from torchvision's file: the sha256 pretrained.py recorded of its source
    starts with the digits in that file's name (torch.hub's check), whatever else net.pth.json says."""
    source = record.get("source_sha256")
    if record["provenance"] == "imagenet" and not (isinstance(source, str) and source.startswith(hub_sha256_prefix(arch))):
        raise UserError(f"{provenance_path(path)} says imagenet, but the sha256 of its source ({json.dumps(source)}) does "
                        f"not start with {hub_sha256_prefix(arch)}, as torchvision's {hub_file(arch)} does; "
                        f"{fix_for(path)}")


def announce(weights, stream=sys.stderr):
    """Every step that uses the weights says which it got."""
    print(f"weights: {weights.describe()}", file=stream)
