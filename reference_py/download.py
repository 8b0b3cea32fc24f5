"""Opt-in: download the tutorial's real hymenoptera_data, check its sha256, unpack it.

    python reference_py/download.py --sha256 HEX [--url URL] [--out data/hymenoptera_data]

The zip is checked against the sha256 you pass (no trusted checksum of it is published with the
tutorial), unpacked into a temporary folder beside --out, checked for the train/ and val/ layout, and
only then renamed to --out. Then: python reference_py/train.py --data-dir data/hymenoptera_data
"""

import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

if not __package__:  # run as a script: make `reference_py` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tqdm import tqdm

from reference_py import ROOT, threads
from reference_py.arguments import ArgumentParser
from reference_py.data import check_layout
from reference_py.errors import UserError, run_cli

URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
DEFAULT_OUT = ROOT / "data" / "hymenoptera_data"
CHUNK = 1 << 16


def fetch(url, target, expected_sha256, progress=True):
    """Stream `url` into `target` with a progress bar; the sha256 must match, or the file is removed."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, file=sys.stderr,
                      disable=not progress) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as error:
        raise UserError(f"cannot download {url} ({getattr(error, 'reason', error)}); check the network and the "
                        f"address, or unpack hymenoptera_data yourself and pass --data-dir") from None
    if digest.hexdigest() != expected_sha256:
        os.unlink(target)
        raise UserError(f"{url}: sha256 {digest.hexdigest()} is not the expected {expected_sha256}; the download "
                        f"is damaged or not the file you meant: retry, or check the value passed to --sha256")


def extract(zip_path, folder):
    """Unpack every member inside `folder` (refusing names that would land outside it)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if not (folder / name).resolve().is_relative_to(folder.resolve()):
                    raise UserError(f"{zip_path}: member {name!r} would be written outside {folder}; "
                                    f"not unpacking an archive like that")
            archive.extractall(folder)
    except zipfile.BadZipFile as error:
        raise UserError(f"{zip_path}: not a zip archive ({error}); check --url") from None


def find_data_root(folder):
    """The folder holding train/ and val/: the archive's root or its single top-level folder."""
    if (folder / "train").is_dir():
        return folder
    entries = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and (entries[0] / "train").is_dir():
        return entries[0]
    raise UserError(f"the archive holds no train/ and val/ folders (top level: "
                    f"{sorted(p.name for p in folder.iterdir())}); check --url")


def download(url, out, expected_sha256, progress=True):
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; use it with --data-dir {out}, or remove it to download again")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        work = Path(work)
        fetch(url, work / "download.zip", expected_sha256, progress)
        extract(work / "download.zip", work / "unpacked")
        root = find_data_root(work / "unpacked")
        check_layout(root)
        os.replace(root, out)
    return out


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--sha256", required=True, help="the zip's sha256 (64 hex digits) to check the download against")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where the unpacked data goes")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    threads.configure()
    expected = args.sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise UserError(f"--sha256 {args.sha256!r} is not a sha256 (64 hex digits); pass the zip's checksum")
    out = download(args.url, args.out, expected, progress=not args.no_progress)
    print(f"download: unpacked into {out}; train with --data-dir {out}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
