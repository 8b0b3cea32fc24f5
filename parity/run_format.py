"""The run format that parity/record.py (Python) and pytorch_parity/record (Ruby,
ruby_port/lib/pytorch_parity/record/) write, and the one reader of it. Documentation: parity/RUN_FORMAT.md.

A run folder holds run.json (written once, at the start), events.jsonl (one JSON object a line, each
appended with a single write as it happens) and tensors-PID.bin (the bytes of the arrays the events
point at, one file per process that recorded: a DataLoader worker writes its own). A run that crashed
keeps every event written before the crash, its end event saying how it ended.
"""

import errno
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reference_py.lock import Lock

# NumPy and torch are imported by the reader alone: the recorder claims its folder before LibTorch loads.

FORMAT = "pytorch-parity-run/1"
OWN_FILE = re.compile(r"(run\.json|events\.jsonl|tensors-\d+\.bin)\Z")
OWN_TEMPORARY = re.compile(r"\.run\.json\.\d+\.tmp\Z")  # run.json being written: what a kill can leave
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")  # torch's names
NUMPY_DTYPES = {"uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
                "float16": "float16", "float32": "float32", "float64": "float64", "bool": "bool"}


@cache
def torch_dtype(name):
    """(torch's dtype, its size in bytes) of a dtype the run format knows."""
    import torch

    dtype = getattr(torch, name)
    return dtype, torch.empty(0, dtype=dtype).element_size()


class RecordError(Exception):
    """A folder or an option the recorder cannot use: one line, the same words as pytorch_parity/record."""


class RunError(Exception):
    """A run folder the reader cannot read: one line saying what is wrong and how to fix it."""


@dataclass
class Bytes:
    """A value as the run stores it: dtype (PyTorch's name), shape, bytes in row-major order, and form
    ("tensor", "image": a picture as uint8 [height, width, bands], "array")."""
    dtype: str
    shape: list
    data: bytes
    form: str


class RunWriter:
    """Claims DIR (new, empty, or a run recorded before, whose files are then removed, nothing else) and
    writes run.json (`info`, or what the function `info` gives once DIR is claimed: the recorder loads
    LibTorch only then), then appends events. The claim rule of every writer (reference_py/output_claim.py),
    kept here in its smallest form because the Ruby twin loads without the port: run.json is the marker
    that names the recorder, its files are known by name (OWN_FILE), and what a killed run left
    half-written is tidied by its name alone (OWN_TEMPORARY). The writers' lock beside DIR (.DIR.lock,
    lock.Lock) is held from the claim to close()."""

    def __init__(self, directory, info):
        self.dir = Path(directory).absolute()
        self._pid = os.getpid()
        self._lock = Lock.beside(self.dir)
        try:
            self._take_lock()
            self._claim()
            self._write_run_json({"format": FORMAT, **(info() if callable(info) else info)})
            self._events = os.open(self.dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except RecordError:
            self._lock.release()
            raise
        except OSError as error:
            self._lock.release()
            if error.errno in UNWRITABLE:
                raise RecordError(f"cannot record into {self.dir}: it is not writable ({error.strerror}); make it "
                                  f"writable or give another folder") from None
            raise RecordError(f"cannot record into {self.dir}: {error.strerror}; give a new or empty folder") from None
        self._blob, self._blob_pid, self._blob_offset = None, None, 0

    def event(self, kind, fields=None, arrays=None):
        """One event: its fields and its arrays (name -> Bytes), the bytes first, then the line that points at them."""
        entry = {"kind": kind, **(fields or {})}
        if arrays:
            entry["tensors"] = {name: self._write_array(array) for name, array in arrays.items()}
        os.write(self._events, (json.dumps(entry, allow_nan=True) + "\n").encode())

    def close(self):
        """The end of the recording: the lock released (by the process that took it, not by a forked child)."""
        if os.getpid() == self._pid:
            self._lock.release()

    def _take_lock(self):
        """Another run (a recording, or a trainer writing OUT_DIR/STRATEGY) holding DIR is refused before anything in
        DIR is touched: a second recorder's claim would delete the first one's files as it writes them."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        holder = self._lock.acquire()
        if holder is not None:
            raise RecordError(f"cannot record into {self.dir}: it is being written by another run (process {holder}; "
                              f"lock {self._lock.path}); wait for it to finish or give another folder")

    def _claim(self):
        if self.dir.exists() and not self.dir.is_dir():
            raise RecordError(f"cannot record into {self.dir}: it is a file; give a new or empty folder")
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True)
            return
        temporaries = [name for name in sorted(os.listdir(self.dir)) if OWN_TEMPORARY.match(name)]
        entries = [name for name in sorted(os.listdir(self.dir)) if name not in temporaries]
        foreign = [name for name in entries if not OWN_FILE.match(name)]
        if foreign or (entries and not self._own_run()):
            shown = ", ".join((foreign or entries)[:3])
            raise RecordError(f"cannot record into {self.dir}: it holds files the recorder did not write "
                              f"({shown}); give a new or empty folder")
        for name in temporaries + entries:
            os.unlink(self.dir / name)

    def _own_run(self):
        try:
            return str(json.loads((self.dir / "run.json").read_text()).get("format", "")).startswith("pytorch-parity-run/")
        except (OSError, ValueError, AttributeError):
            return False

    def _write_run_json(self, info):
        tmp = self.dir / f".run.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info, indent=2, allow_nan=True) + "\n")
        os.replace(tmp, self.dir / "run.json")

    def _write_array(self, array):
        if self._blob_pid != os.getpid():
            self._blob_pid = os.getpid()
            path = self.dir / f"tensors-{self._blob_pid}.bin"
            self._blob = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            self._blob_offset = os.fstat(self._blob).st_size
            self._blob_name = path.name
        offset = self._blob_offset
        if array.data:
            os.write(self._blob, array.data)
        self._blob_offset += len(array.data)
        return {"dtype": array.dtype, "shape": list(array.shape), "form": array.form, "file": self._blob_name,
                "offset": offset, "nbytes": len(array.data)}


class Run:
    """A recorded run, read: `info` (run.json), `events` (in the order they were written), `end` (the end
    event, or None when the process was killed), and the arrays of an event as tensors."""

    def __init__(self, path):
        self.path = Path(path)
        self.info = self._read_info()
        self.events, self.truncated = self._read_events()
        self.end = next((event for event in reversed(self.events) if event["kind"] == "end"), None)
        self._files = {}

    @property
    def side(self):
        return self.info.get("side", "?")

    def tensors(self, event):
        """The event's arrays as name -> tensor (an image stays uint8 [height, width, bands])."""
        return {name: self.tensor(entry) for name, entry in event.get("tensors", {}).items()}

    def tensor(self, entry):
        import torch

        if entry.get("dtype") not in DTYPES:
            raise RunError(f"{self.path}: an array of dtype {entry.get('dtype')!r}, which this reader does not know")
        dtype, itemsize = torch_dtype(entry["dtype"])
        data = self._file(entry["file"])
        start, size = entry["offset"], entry["nbytes"]
        if start + size > len(data):
            raise RunError(f"{self.path / entry['file']}: shorter than its events say (truncated copy?); record the run again")
        if not size:
            return torch.empty(entry["shape"], dtype=dtype)
        # the file's own pages, not a copy: each fresh page of a copy costs a fault (a tutorial run's 340 MB, 1.3 CPU-s).
        # An array need not start at a multiple of its element's size (an image of odd size before it): LibTorch's
        # kernels load it unaligned.
        return torch.frombuffer(data, dtype=dtype, offset=start, count=size // itemsize).reshape(entry["shape"])

    def stack(self):
        """What the run ran on, as recorded last (at the end, else at the model's first call, else at the start)."""
        for event in reversed(self.events):
            if event["kind"] in ("end", "model") and event.get("stack"):
                return event["stack"]
        return self.info.get("stack", {})

    def fixes_loaded(self):
        """The pytorch_parity fix files the run had loaded (Ruby; [] for Python), or None when unknown."""
        if self.end is not None and "pytorch_parity" in self.end:
            return list(self.end["pytorch_parity"])
        return self.info.get("pytorch_parity")

    def _file(self, name):
        import numpy as np

        if name not in self._files:
            if not re.fullmatch(r"tensors-\d+\.bin", name):
                raise RunError(f"{self.path}: an event points at {name!r}, not a file of the run format")
            path = self.path / name
            try:
                # copy-on-write: the tensors taken from it are writable, and nothing written reaches the file
                self._files[name] = np.memmap(path, dtype=np.uint8, mode="c") if path.stat().st_size else np.empty(0, np.uint8)
            except OSError:
                raise RunError(f"{path}: missing, but the run's events point at it; record the run again") from None
        return self._files[name]

    def _read_info(self):
        if not self.path.exists():
            raise RunError(f"{self.path}: no such folder; record a run into it first (RUN_FORMAT.md)")
        if not self.path.is_dir():
            raise RunError(f"{self.path}: not a folder; give the folder a run was recorded into")
        if not any(self.path.iterdir()):
            raise RunError(f"{self.path}: an empty folder, not a recorded run; record a run into it first")
        try:
            info = json.loads((self.path / "run.json").read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path}: no run.json, so not a run recorded by parity.record or "
                           f"pytorch_parity/record") from None
        except ValueError as error:
            raise RunError(f"{self.path / 'run.json'}: not valid JSON ({error}); record the run again") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            found = info.get("format") if isinstance(info, dict) else None
            raise RunError(f"{self.path}: a run of format {found!r}, and this reader reads {FORMAT!r}; record the run "
                           f"again with this version")
        return info

    def _read_events(self):
        """The events; a last line cut short (the process died while writing it) is left out and said."""
        try:
            text = (self.path / "events.jsonl").read_text()
        except FileNotFoundError:
            raise RunError(f"{self.path}: no events.jsonl: the recording never started; record the run again") from None
        lines = text.split("\n")
        truncated = lines[-1] != ""
        events = []
        for number, line in enumerate(lines[:-1], 1):
            try:
                event = json.loads(line)
            except ValueError:
                raise RunError(f"{self.path / 'events.jsonl'}: line {number} is not JSON; record the run again") from None
            if not isinstance(event, dict) or "kind" not in event:
                raise RunError(f"{self.path / 'events.jsonl'}: line {number} is not an event; record the run again")
            events.append(event)
        return events, truncated


def read_run(path):
    """The run recorded in PATH (RunError, one line, when it cannot be read)."""
    return Run(path)


def numpy_dtype_name(dtype):
    """The run's name for a NumPy dtype, or None when it has none."""
    import numpy as np

    return NUMPY_DTYPES.get(np.dtype(dtype).name)
