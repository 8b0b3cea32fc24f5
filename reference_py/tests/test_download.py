"""download.py against a loopback HTTP server (the real address is not reachable here)."""

import functools
import hashlib
import http.server
import threading
import zipfile

import pytest

from reference_py import output_claim
from reference_py.download import download
from reference_py.errors import UserError
from reference_py.tests.helpers import run_cli


@pytest.fixture(scope="module")
def server(tiny_data, tmp_path_factory):
    """Serves hymenoptera_data.zip (made from the tiny set, under a top-level folder) on 127.0.0.1: the set's
    files, not the output marker standin_data keeps beside them, as a data set's archive has none."""
    root = tmp_path_factory.mktemp("served")
    with zipfile.ZipFile(root / "hymenoptera_data.zip", "w") as archive:
        for path in sorted(tiny_data.rglob("*")):
            if path.is_file() and path.name != output_claim.MARKER:
                archive.write(path, "hymenoptera_data/" + path.relative_to(tiny_data).as_posix())
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hymenoptera_data.zip"
    yield url, hashlib.sha256((root / "hymenoptera_data.zip").read_bytes()).hexdigest()
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_checks_and_unpacks(server, tiny_data, tmp_path):
    url, sha256 = server
    out = download(url, tmp_path / "hymenoptera_data", sha256, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["STANDIN.json", "train", "val"]
    served = sorted(p.relative_to(tiny_data) for p in tiny_data.rglob("*.*") if p.name != output_claim.MARKER)
    assert sorted(p.relative_to(out) for p in out.rglob("*.*")) == served
    assert (out / "train" / "ants" / "ant_000.jpg").read_bytes() == (tiny_data / "train/ants/ant_000.jpg").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["hymenoptera_data"]  # nothing else left beside it


def test_wrong_checksum_is_one_line_and_leaves_nothing(server, tmp_path):
    url, _ = server
    completed = run_cli("download.py", "--url", url, "--sha256", "0" * 64, "--out", tmp_path / "data",
                        "--no-progress")
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("download.py: error: ") and "sha256" in lines[0]
    assert "0" * 64 in lines[0] and "--sha256" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_unreachable_address_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot download"):
        download("http://127.0.0.1:9/hymenoptera_data.zip", tmp_path / "data", "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_not_overwritten(server, tmp_path):
    url, sha256 = server
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match="already exists"):
        download(url, tmp_path / "data", sha256, progress=False)
