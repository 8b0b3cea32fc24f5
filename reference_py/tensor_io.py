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
DIGESTS_FORMAT = "hymenoptera-digests/1"  # an index without its blob (write_digests)
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
            data, entry = _bytes_and_entry(name, tensor, offset)
            blob.write(data)
            entries.append(entry)
            offset += data.nbytes
    index = {"format": FORMAT, "tensors": entries, "meta": meta or {}}
    atomic.write_text(index_path, json.dumps(index, indent=1) + "\n")


def write_digests(stem, tensors, meta=None):
    """Write STEM.json alone: each tensor's name, dtype, shape, nbytes and sha256 (as write_bundle records them),
    hashed in its own memory, and no blob. Equal tensors are proven equal by their digests without writing their
    bytes (the zoo: a VGG's results are 1.1 GB a side); read_digests reads it, read_bundle refuses it."""
    entries = [_bytes_and_entry(name, tensor)[1] for name, tensor in tensors.items()]
    index = {"format": DIGESTS_FORMAT, "tensors": entries, "meta": meta or {}}
    atomic.write_text(bundle_paths(stem)[0], json.dumps(index, indent=1) + "\n")


def sha256(tensor):
    """The sha256 of tensor's bytes as write_bundle writes them, without writing them."""
    return _bytes_and_entry("tensor", tensor)[1]["sha256"]


def _bytes_and_entry(name, tensor, offset=None):
    """(tensor's bytes, little-endian and row-major, a view of its memory where it is contiguous; its index entry, with
    its offset in the blob where it has one)."""
    tensor = tensor.detach().cpu().contiguous()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in DTYPES:
        raise BundleError(f"{name}: dtype {tensor.dtype} cannot be stored in a bundle")
    data = tensor.numpy().astype(DTYPES[dtype], copy=False).reshape(-1).view(np.uint8)
    entry = {"name": name, "dtype": dtype, "shape": list(tensor.shape), **({} if offset is None else {"offset": offset}),
             "nbytes": data.nbytes, "sha256": hashlib.sha256(data).hexdigest()}
    return data, entry


def read_index(stem, formats=(FORMAT,)):
    index_path, _ = bundle_paths(stem)
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{index_path}: bundle index not found") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{index_path}: not valid JSON ({error})") from None
    if index.get("format") not in formats:
        raise BundleError(f"{index_path}: format is {index.get('format')!r}, expected {' or '.join(map(repr, formats))}")
    return index


def read_digests(stem):
    """The index of a bundle, or of the digests write_digests wrote in its place: each tensor's sha256 either way."""
    return read_index(stem, formats=(FORMAT, DIGESTS_FORMAT))


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
