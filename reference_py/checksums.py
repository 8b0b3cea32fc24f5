"""Checksums: the sha256 of a file, as the manifests, the weights' records and the data fingerprint keep it."""

import hashlib


def file_sha256(path):
    """The file's sha256, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
