"""Bundles read back as written, copied into fresh memory or mapped from the file (read_bundle's mapped), and
refused alike when truncated or corrupt."""

import json

import pytest
import torch

from reference_py.tensor_io import (BundleError, bundle_paths, read_bundle, read_digests, sha256, write_bundle,
                                    write_digests)


def tensors():
    """Every dtype a bundle stores, an odd-sized array first (so that the others do not start at a multiple of their
    element's size in the blob), a scalar, an empty tensor and a non-contiguous view."""
    generator = torch.Generator().manual_seed(0)
    wide = torch.randn(4, 6, dtype=torch.float64, generator=generator)
    return {
        "image": torch.randint(0, 256, (3, 5, 3), dtype=torch.uint8, generator=generator),
        "weight": torch.randn(7, 3, dtype=torch.float32, generator=generator),
        "wide": wide,
        "view": wide.t(),
        "count": torch.tensor(12345678901, dtype=torch.int64),
        "empty": torch.empty(0, 3, dtype=torch.float32),
    }


@pytest.mark.parametrize("mapped", [False, True])
def test_a_bundle_reads_back_as_written(tmp_path, mapped):
    written = tensors()
    write_bundle(tmp_path / "b", written, meta={"epoch": 1})
    offsets = [entry["offset"] for entry in json.loads(bundle_paths(tmp_path / "b")[0].read_text())["tensors"]]
    assert offsets[1] % 4 and offsets[2] % 8, "the arrays after the image must start unaligned in the blob"
    read, meta = read_bundle(tmp_path / "b", with_meta=True, mapped=mapped)
    assert meta == {"epoch": 1} and list(read) == list(written)
    for name, tensor in written.items():
        assert read[name].dtype == tensor.dtype and read[name].shape == tensor.shape, name
        assert torch.equal(read[name], tensor), name
        assert torch.equal(read[name].double().sum(), tensor.contiguous().double().sum()), name  # a kernel reads it


def test_a_mapped_tensor_written_to_leaves_the_file_as_it_was(tmp_path):
    write_bundle(tmp_path / "b", tensors())
    blob = bundle_paths(tmp_path / "b")[1]
    before = blob.read_bytes()
    read_bundle(tmp_path / "b", mapped=True)["weight"].add_(1.0)
    assert blob.read_bytes() == before
    assert torch.equal(read_bundle(tmp_path / "b", mapped=True)["weight"], tensors()["weight"])


@pytest.mark.parametrize("mapped", [False, True])
def test_a_truncated_or_corrupt_blob_is_refused(tmp_path, mapped):
    write_bundle(tmp_path / "b", tensors())
    blob = bundle_paths(tmp_path / "b")[1]
    data = blob.read_bytes()
    blob.write_bytes(data[:-1])
    with pytest.raises(BundleError, match=r"b\.bin: count is truncated"):
        read_bundle(tmp_path / "b", mapped=mapped)
    corrupt = bytearray(data)
    corrupt[-1] ^= 1
    blob.write_bytes(bytes(corrupt))
    with pytest.raises(BundleError, match=r"b\.bin: count does not match its sha256"):
        read_bundle(tmp_path / "b", mapped=mapped)
    blob.unlink()
    with pytest.raises(BundleError, match=r"b\.bin: bundle data not found"):
        read_bundle(tmp_path / "b", mapped=mapped)


def test_a_bundle_of_empty_tensors_alone_reads_mapped(tmp_path):
    write_bundle(tmp_path / "b", {"empty": torch.empty(0, dtype=torch.float64), "none": torch.empty(2, 0)})
    read = read_bundle(tmp_path / "b", mapped=True)
    assert read["empty"].shape == (0,) and read["none"].shape == (2, 0) and read["none"].dtype == torch.float32


def test_digests_are_the_index_write_bundle_records_without_its_blob(tmp_path):
    written = tensors()
    write_bundle(tmp_path / "b", written, meta={"epoch": 1})
    write_digests(tmp_path / "d", written, meta={"epoch": 1})
    bundle, digests = read_digests(tmp_path / "b"), read_digests(tmp_path / "d")
    assert [{k: v for k, v in entry.items() if k != "offset"} for entry in bundle["tensors"]] == digests["tensors"]
    assert digests["meta"] == {"epoch": 1} and [entry["sha256"] for entry in digests["tensors"]] == list(
        map(sha256, written.values()))
    assert not bundle_paths(tmp_path / "d")[1].exists()
    with pytest.raises(BundleError, match=r"d\.json: format is 'hymenoptera-digests/1', expected 'hymenoptera-bundle/1'"):
        read_bundle(tmp_path / "d")
