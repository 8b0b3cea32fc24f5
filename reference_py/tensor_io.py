"""Tensor bundles: a JSON index beside a raw little-endian blob (format: fixtures/README.md).

An index reads without LibTorch (the replay checks the fixtures' indexes before LibTorch loads); the tensors'
reader imports torch.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from reference_py import atomic
from reference_py.errors import UserError

FORMAT = "hymenoptera-bundle/1"
DTYPES = {  # a bundle's dtype, named as torch names it (torch.float32: float32) -> its bytes' numpy dtype
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
}


class BundleError(UserError):
    """A bundle that is missing, truncated or does not match its index."""


def bundle_paths(stem):
    stem = Path(stem)
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".bin")


def write_bundle(stem, tensors, meta=None):
    """Write an ordered mapping name -> tensor as STEM.bin and STEM.json (the index last).

    Each tensor's bytes go to the file from the tensor's own memory, as Ruby's twin streams them: a copy of a
    VGG's 0.5 GB state in fresh memory cost a page fault per page."""
    index_path, blob_path = bundle_paths(stem)
    entries, offset = [], 0
    with atomic.atomic_path(blob_path) as tmp, open(tmp, "wb") as blob:
        for name, tensor in tensors.items():
            tensor = tensor.detach().cpu().contiguous()
            dtype = str(tensor.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                raise BundleError(f"{name}: dtype {tensor.dtype} cannot be stored in a bundle")
            data = tensor.numpy().astype(DTYPES[dtype], copy=False).reshape(-1).view(np.uint8)
            blob.write(data)
            entries.append({
                "name": name,
                "dtype": dtype,
                "shape": list(tensor.shape),
                "offset": offset,
                "nbytes": data.nbytes,
                "sha256": hashlib.sha256(data).hexdigest(),
            })
            offset += data.nbytes
    index = {"format": FORMAT, "tensors": entries, "meta": meta or {}}
    atomic.write_text(index_path, json.dumps(index, indent=1) + "\n")


def read_index(stem):
    index_path, _ = bundle_paths(stem)
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{index_path}: bundle index not found") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{index_path}: not valid JSON ({error})") from None
    if index.get("format") != FORMAT:
        raise BundleError(f"{index_path}: format is {index.get('format')!r}, expected {FORMAT!r}")
    return index


def read_bundle(stem, with_meta=False, mapped=False):
    """Read a bundle into a dict name -> tensor (in stored order), checking sizes and sha256.

    mapped: each tensor is the file's own pages, mapped copy-on-write (writing to it changes no file), not a copy in
    fresh memory, each of whose pages costs a fault: for a reader that looks at a bundle once, as the parity suite
    compares runs (a replay's 240 MB: 0.7 -> 0.3 CPU-s). An array need not start at a multiple of its element's
    size there (an odd-sized one before it), which LibTorch's kernels load unaligned."""
    import torch

    index = read_index(stem)
    _, blob_path = bundle_paths(stem)
    tensors = {}
    try:
        blob = open(blob_path, "rb")
    except FileNotFoundError:
        raise BundleError(f"{blob_path}: bundle data not found") from None
    with blob:
        size_on_disk = os.fstat(blob.fileno()).st_size
        pages = np.memmap(blob, dtype=np.uint8, mode="c") if mapped and size_on_disk else None
        for entry in index["tensors"]:  # each tensor's bytes read into its own memory: no copy of the whole blob
            start, size = entry["offset"], entry["nbytes"]
            if start + size > size_on_disk:
                raise BundleError(f"{blob_path}: {entry['name']} is truncated")
            if pages is not None:
                data = pages[start:start + size]
            else:
                data = np.empty(size, dtype=np.uint8)
                blob.seek(start)
                blob.readinto(data)
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BundleError(f"{blob_path}: {entry['name']} does not match its sha256")
            dtype = getattr(torch, entry["dtype"])
            if pages is not None and size:
                tensor = torch.frombuffer(pages, dtype=dtype, offset=start, count=size // DTYPES[entry["dtype"]].itemsize)
            else:
                tensor = torch.from_numpy(data.view(DTYPES[entry["dtype"]])).to(dtype)
            tensors[entry["name"]] = tensor.reshape(entry["shape"])
    return (tensors, index["meta"]) if with_meta else tensors
