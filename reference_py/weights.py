"""net.pth: loading and checking the backbone's weights, and reading where they came from.

net.pth is a plain dict of tensors (ResNet-18 with its 1000-class ImageNet fc), so that torch.rb's
Torch.load reads it too. Beside it, net.pth.json says whether it holds torchvision's ImageNet
weights or the seeded stand-in (reference_py/pretrained.py writes both).
"""

import functools
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from reference_py import atomic
from reference_py.errors import UserError, read_json

PROVENANCES = ("imagenet", "stand-in")
OPTIONAL_SUFFIX = "num_batches_tracked"  # absent from torchvision's published checkpoint
FIX = "re-create it with `python reference_py/pretrained.py --out {path}`"


@dataclass
class Weights:
    state_dict: dict
    provenance: str
    sha256: str
    path: Path

    def describe(self):
        return f"{self.provenance} weights (sha256 {self.sha256[:12]}) from {self.path}"

    def summary(self):
        """What curves.json and the fixtures' manifest record about the weights."""
        return {"provenance": self.provenance, "sha256": self.sha256, "path": str(self.path)}


@functools.lru_cache(maxsize=1)
def expected_shapes():
    """Name -> shape of every entry of torchvision's ResNet-18 (1000 classes), in state_dict() order."""
    model = torchvision.models.resnet18(weights=None)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_state_dict(path, state_dict):
    """torch.save a plain dict of tensors (torch.rb's Torch.load reads it), atomically.

    Serialised in memory first: torch.save names the archive after the file, and a temporary file's
    random name would make the bytes differ from run to run.
    """
    buffer = io.BytesIO()
    torch.save({name: tensor for name, tensor in state_dict.items()}, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def provenance_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_state_dict(path, fix=None):
    """torch.load a checkpoint of tensors only (weights_only); any failure is the user's to fix."""
    path = Path(path)
    fix = fix or FIX.format(path=path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found; {fix}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load of arbitrary bytes fails in many ways, all "unreadable"
        raise UserError(f"{path} is not a readable PyTorch checkpoint of tensors ({error}); "
                        f"{fix}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors (a state dict); {fix}")
    return dict(loaded)


def validate(state_dict, path, fix=None):
    """Check names and shapes against ResNet-18 with a 1000-class fc (num_batches_tracked may be absent)."""
    shapes = expected_shapes()
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
        raise UserError(f"{path} is not a ResNet-18 state dict with a 1000-class fc: {', '.join(problems)}; "
                        f"{fix or FIX.format(path=path)}")


def read_provenance(path):
    """net.pth.json, checked against the file it describes."""
    path = Path(path)
    record_path = provenance_path(path)
    record = read_json(record_path, FIX.format(path=path), missing=f"not found, so the origin of {path} is unknown")
    if record.get("provenance") not in PROVENANCES:
        raise UserError(f"{record_path}: provenance {record.get('provenance')!r} is not one of "
                        f"{', '.join(PROVENANCES)}; {FIX.format(path=path)}")
    return record


def load_weights(path):
    """Load net.pth, check it and its provenance; returns a Weights."""
    path = Path(path)
    state_dict = read_state_dict(path)
    validate(state_dict, path)
    record = read_provenance(path)
    sha256 = file_sha256(path)
    if record.get("sha256") != sha256:
        raise UserError(f"{path} (sha256 {sha256[:12]}) is not the file {provenance_path(path)} describes "
                        f"(sha256 {str(record.get('sha256'))[:12]}); {FIX.format(path=path)}")
    return Weights(state_dict, record["provenance"], sha256, path)


def announce(weights, stream=sys.stderr):
    """Every step that uses the weights says which it got."""
    print(f"weights: {weights.describe()}", file=stream)
