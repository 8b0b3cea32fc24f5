"""Bad input, table-driven, against both languages' entry points (reference_py/*.py and ruby_port/bin/*).

Every case runs each side's real command line in a folder of its own and must end with exit status 2
and exactly one line on stderr that names the problem and the fix (the same words on both sides), and
every file that existed before the run must be byte-identical after it. The cases run a few at a time, each
forked by the session's server of its language, which loaded LibTorch and torchvision once (parity/sides.py's
session_server; parity/fork_server.py: the command runs as the interpreter runs it, in the case's folder), as the trainers of the crash tests are: a
case was mostly an interpreter, and for some LibTorch, starting. The recorder's cases run as processes of
their own (the Ruby recorder's command line is not one a server runs).

The crash-consistency tests kill a trainer (SIGTERM, SIGKILL) while it trains and while it writes its
result, and check that the result of an earlier run is never lost, that nothing half-written is left in
its place, and that the next run tidies what a killed one left and reports it.
"""

import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command, python, ruby, session_server
from reference_py import standin_data
from reference_py.checksums import file_sha256
from reference_py.export_fixtures import ensure_fixtures
from reference_py.pretrained import HUB_FILE, HUB_SHA256_PREFIX, standin_state_dict, write_net
from reference_py.tensor_io import read_bundle, write_bundle
from reference_py.weights import provenance_path, save_state_dict

pytestmark = [pytest.mark.extended, pytest.mark.bad_input]

PARALLEL = 3  # processes at a time: each waits mostly on its interpreter starting
SCRIPTS = {"python": lambda name: f"{name}.py", "ruby": lambda name: name}
COMMANDS = {"python": python, "ruby": ruby}
TRAIN = ["--strategy", "scratch", "--epochs", "1", "--no-progress"]
SMALL_FIXTURES = {"seed": 0, "eval_per_class": 2, "replay_per_class": 2}


class Servers:
    """The session's fork server of each side (parity/sides.py's session_server: it loaded LibTorch, torchvision and
    Python's matplotlib, which train.py draws with, once, in the environment of the suite's commands), shared by the
    threads that run the cases: each command runs as its interpreter runs it, in its folder, its stdout and stderr in
    files (run, start). Servers of this module's own, with the same environment and modules, paid their start again
    beside the session's (9.6 CPU-s)."""

    def __init__(self, outputs):
        self.outputs, self.lock, self.count = outputs, threading.Lock(), 0
        self.servers = {"python": session_server("Python"), "ruby": session_server("Ruby")}

    def serves(self, side, command, env):
        server = self.servers[side]
        return command.argv[0] == server.interpreter and not command.argv[1].startswith("-I") and server.accepts(env)

    def start(self, side, command, env, cwd):
        """The command running (a ForkedRun), forked by `side`'s server."""
        with self.lock:
            self.count += 1
            output, errors = self.outputs / f"{self.count}.out", self.outputs / f"{self.count}.err"
            job = self.servers[side].start(command.argv[1:], env, output, errors=errors, cwd=cwd)
        return ForkedRun(self.lock, job, output, errors)

    def run(self, side, command, env, cwd, timeout):
        """subprocess.run(command.argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout), forked."""
        process = self.start(side, command, env, cwd)
        stdout, stderr = process.communicate(timeout)
        return subprocess.CompletedProcess(command.argv, process.returncode, stdout, stderr)


class ForkedRun:
    """A command a Servers runs, as subprocess.Popen has it for the tests here: poll, send_signal, communicate."""

    def __init__(self, lock, job, output, errors):
        self.lock, self.job, self.files = lock, job, (output, errors)

    @property
    def returncode(self):
        return self.job.returncode

    def poll(self):
        with self.lock:
            return self.job.poll()

    def send_signal(self, number):
        with self.lock:
            self.job.send_signal(number)

    def communicate(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                self.send_signal(signal.SIGKILL)  # as subprocess.run ends a command past its timeout
                raise subprocess.TimeoutExpired(self.job.argv, timeout)
            time.sleep(0.02)
        return tuple(path.read_text() for path in self.files)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    return Servers(tmp_path_factory.mktemp("bad_input_outputs"))


# --- inputs ------------------------------------------------------------------------------------------------

def png_bytes(width, height, bit_depth, colour_type, rows):
    """A PNG from raw rows (each with its filter byte): the decompression bomb costs no memory to make."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def bomb_png(path):
    """20000 x 20000 one-bit pixels, 400 million: more than PIL's 2 * MAX_IMAGE_PIXELS, a few hundred kB."""
    path.write_bytes(png_bytes(20000, 20000, 1, 0, bytes(20000 * (1 + 2500))))


def png16(path, channels):
    rng = np.random.RandomState(7)
    values = rng.randint(0, 65536, size=(32, 32 * channels)).astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in values)
    path.write_bytes(png_bytes(32, 32, 16, 0 if channels == 1 else 2, rows))


def truncate_after_header(path):
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b"\xff\xda") + 40])  # the header and the start of the scan, no more


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """What the cases start from: a tiny image set, stand-in weights, small fixtures."""
    root = tmp_path_factory.mktemp("bad_input_inputs")
    data = standin_data.generate(root / "data", seed=1, counts={"train": 2, "val": 2})
    net = root / "weights" / "net.pth"
    net.parent.mkdir()
    write_net(net, standin_state_dict(seed=3), "stand-in", "seed 3")
    fixtures = root / "fixtures"
    ensure_fixtures(fixtures, data_dir=data, weights_path=net, **SMALL_FIXTURES)
    return {"data": data, "net": net, "fixtures": fixtures}


# --- the case table ----------------------------------------------------------------------------------------

@dataclass
class Case:
    script: str  # the entry point's name (train, replay, preprocess, pretrained), a path (bench/run.py), or RECORD
    args: list  # {data}, {net}, {fixtures}, {case}: placeholders filled per case folder
    expect: list  # fragments the error line must hold (same on both sides), with the same placeholders
    prepare: object = None  # prepare(case folder, inputs): make the bad input (and any files to keep); may return undo()
    sides: tuple = ("python", "ruby")  # pretrained.py exists in Python only


RECORD = "record"  # the recorder of "Diagnose any port"; its args: the folder it records into
RECORDER = {  # side: (the command recording program.py / program.rb into OUT, what its error line starts with)
    "python": (lambda out: Command("Python", [sys.executable, "-m", "parity.record", "--out", out, "program.py"],
                                   {"PYTHONPATH": str(ROOT)}), "parity.record: "),
    "ruby": (lambda out: Command("Ruby", ["ruby", "-I", str(RUBY_PORT / "lib"), "-rpytorch_parity/record", "program.rb"],
                                 {"PYTORCH_PARITY_RECORD": out}), "pytorch_parity/record: "),
}


def command_for(side, script, args):
    if script == RECORD:
        return RECORDER[side][0](*args)
    if "/" in script:  # a Python script outside reference_py/, by its path from the repository root
        return Command("Python", [sys.executable, str(ROOT / script), *args])
    return COMMANDS[side](SCRIPTS[side](script), *args)


def error_prefix(side, script):
    if script == RECORD:
        return RECORDER[side][1]
    return f"{os.path.basename(script) if '/' in script else SCRIPTS[side](script)}: error: "


def copy_data(folder, inputs):
    return Path(shutil.copytree(inputs["data"], folder / "data"))


def data_with(change):
    """prepare: a copy of the image set, changed by change(data folder)."""
    def prepare(folder, inputs):
        change(copy_data(folder, inputs))
    return prepare


def fixtures_with(change):
    """prepare: a copy of the fixtures whose manifest (and bundle indexes) change(folder, manifest) edits."""
    def prepare(folder, inputs):
        fixtures = Path(shutil.copytree(inputs["fixtures"], folder / "fixtures", copy_function=os.link))
        manifest = json.loads((fixtures / "manifest.json").read_text())
        manifest = change(fixtures, manifest)
        (fixtures / "manifest.json").unlink()  # a hard link to the original: write a new file
        (fixtures / "manifest.json").write_text(json.dumps(manifest))
    return prepare


def edit_index(fixtures, name, edit):
    path = fixtures / f"{name}.json"
    index = json.loads(path.read_text())
    edit(index)
    path.unlink()
    path.write_text(json.dumps(index))
    return index


def protocol_change(key, value):
    def change(fixtures, manifest):
        if value is None:
            del manifest["protocol"][key]
        else:
            manifest["protocol"][key] = value
        return manifest
    return change


def eval_images_reshaped(fixtures, manifest):
    edit_index(fixtures, "eval", lambda index: index["tensors"][0].update(shape=[4, 3, 448, 224]))
    return manifest


def eval_images_retyped_everywhere(fixtures, manifest):
    edit_index(fixtures, "eval", lambda index: index["tensors"][0].update(dtype="float64"))
    manifest["bundles"]["eval"][0].update(dtype="float64")
    return manifest


def user_folder(relative, with_marker=False):
    """prepare: a folder of the user's (notes.txt), optionally with a train marker claiming other files."""
    def prepare(folder, inputs):
        target = folder / relative
        target.mkdir(parents=True)
        (target / "notes.txt").write_text("mine\n")
        if with_marker:
            (target / ".hymenoptera-output.json").write_text(json.dumps({"tool": "train", "files": ["curves.json"]}))
    return prepare


def users_data_folder(relative):
    """prepare: a folder of the user's with an index and a file in a train/ of its own."""
    def prepare(folder, inputs):
        target = folder / relative
        (target / "train").mkdir(parents=True)
        (target / "index.txt").write_text("my photos, by date\n")
        (target / "train" / "keep.txt").write_text("do not delete\n")
    return prepare


def train_result(relative):
    """prepare: a trainer's result, as train writes it (its marker names train and the files it wrote)."""
    def prepare(folder, inputs):
        target = folder / relative
        target.mkdir(parents=True)
        (target / "curves.json").write_text(json.dumps({"train_loss": [0.7]}))
        (target / ".hymenoptera-output.json").write_text(json.dumps({"tool": "train", "files": ["curves.json"]}))
    return prepare


def for_the_recorder(prepare):
    """prepare: the program each side's recorder would run (it must not: the folder is refused first), then prepare."""
    def both(folder, inputs):
        (folder / "program.py").write_text("print('the program ran')\n")
        (folder / "program.rb").write_text("puts 'the program ran'\n")
        return prepare(folder, inputs)
    return both


def read_only_folder(relative):
    """prepare: a folder nobody may write in (root too: immutable, chattr +i); returns its undo."""
    def prepare(folder, inputs):
        target = folder / relative
        target.mkdir()
        target.chmod(0o555)
        immutable = False
        try:
            (target / ".probe").touch()
        except PermissionError:
            pass
        else:  # root writes anywhere: make the folder immutable
            (target / ".probe").unlink()
            subprocess.run(["chattr", "+i", str(target)], check=True, capture_output=True)
            immutable = True

        def undo():
            if immutable:
                subprocess.run(["chattr", "-i", str(target)], check=True, capture_output=True)
            target.chmod(0o755)
        return undo
    return prepare


def user_file(relative):
    def prepare(folder, inputs):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("the user's file\n")
    return prepare


def spec_for(image_maker):
    """prepare: a preprocess spec of one image made by image_maker(path)."""
    def prepare(folder, inputs):
        image = folder / "image.png"
        image_maker(image)
        (folder / "spec.json").write_text(json.dumps({"images": [{"path": str(image), "crop": [0, 0, 8, 8]}]}))
    return prepare


def truncated_jpeg_spec(folder, inputs):
    image = folder / "image.jpg"
    shutil.copy(next((inputs["data"] / "train" / "ants").glob("*.jpg")), image)
    truncate_after_header(image)
    (folder / "spec.json").write_text(json.dumps({"images": [{"path": str(image), "crop": [0, 0, 8, 8]}]}))


def first_jpeg(data):
    return sorted((data / "train" / "ants").glob("*.jpg"))[0]


def weights_json(content):
    def prepare(folder, inputs):
        net = folder / "net.pth"
        shutil.copy(inputs["net"], net)
        (folder / "net.pth.json").write_text(content)
    return prepare


def weights_without_provenance(folder, inputs):
    shutil.copy(inputs["net"], folder / "net.pth")


def invalid_utf8_name(data):
    source = first_jpeg(data)
    os.rename(source, os.fsencode(source.parent) + b"/ant_\xff.jpg")


def bundle_swapped(listed):
    """fixtures_with: finetune's epoch_0 replaced by backbone_lr's (the same shapes); listed: the manifest's sha256 too."""
    def change(fixtures, manifest):
        for ext in ("json", "bin"):
            target = fixtures / f"strategies/finetune/epoch_0.{ext}"
            target.unlink()  # a hard link to the original
            shutil.copy(fixtures / f"strategies/backbone_lr/epoch_0.{ext}", target)
            if listed:
                manifest["files"][f"strategies/finetune/epoch_0.{ext}"] = file_sha256(target)
        return manifest
    return change


def eval_of_another_export(fixtures, manifest):
    """fixtures_with: an eval bundle as another export would write it (other images, a consistent bundle)."""
    tensors, meta = read_bundle(fixtures / "eval", with_meta=True)
    for ext in ("json", "bin"):
        (fixtures / f"eval.{ext}").unlink()  # hard links to the originals
    write_bundle(fixtures / "eval", {**tensors, "images": tensors["images"] + 1}, meta=meta)
    return manifest


def sidecar_says_imagenet(folder, inputs):
    """net.pth's stand-in weights, its net.pth.json edited to say imagenet."""
    shutil.copy(inputs["net"], folder / "net.pth")
    record = json.loads(provenance_path(inputs["net"]).read_text())
    (folder / "net.pth.json").write_text(json.dumps({**record, "provenance": "imagenet"}))


def nan_weights(folder, inputs):
    """Every floating-point weight NaN, written by pretrained.py's writer (so net.pth.json matches it)."""
    state = torch.load(inputs["net"], weights_only=True)
    write_net(folder / "net.pth", {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in state.items()},
              "user-supplied", "all NaN")


OUT = ["--out-dir", "{case}/out"]
CASES = {
    # options: ranges, the same rule on both sides
    "batch size 0": Case("train", [*TRAIN, "--batch-size", "0", *OUT], ["--batch-size 0", "a whole number of at least 1"]),
    "epochs 0": Case("train", [*TRAIN[:2], "--epochs", "0", *OUT], ["--epochs 0", "a whole number of at least 1"]),
    "workers -1": Case("train", [*TRAIN, "--workers", "-1", *OUT], ["--workers -1", "a whole number from 0 to 64"]),
    "workers 1.5": Case("train", [*TRAIN, "--workers", "1.5", *OUT], ["--workers", "1.5"]),
    "workers 65": Case("train", [*TRAIN, "--workers", "65", *OUT], ["--workers 65", "from 0 to 64"]),
    "step size 0": Case("train", [*TRAIN, "--step-size", "0", *OUT], ["--step-size 0", "at least 1"]),
    "lr -1": Case("train", [*TRAIN, "--lr", "-1", *OUT], ["--lr -1.0", "a finite number of at least 0"]),
    "lr nan": Case("train", [*TRAIN, "--lr", "nan", *OUT], ["--lr nan", "a finite number of at least 0"]),
    "momentum -1": Case("train", [*TRAIN, "--momentum", "-1", *OUT], ["--momentum -1.0", "finite number"]),
    "gamma nan": Case("train", [*TRAIN, "--gamma", "nan", *OUT], ["--gamma nan", "finite number"]),
    "head lr inf": Case("train", [*TRAIN, "--head-lr", "inf", *OUT], ["--head-lr inf", "finite number"]),
    "seed 2**70": Case("train", [*TRAIN, "--seed", str(2**70), *OUT], [f"--seed {2**70}", "from 0 to 18446744073709551614"]),
    "seed -1": Case("train", [*TRAIN, "--seed", "-1", *OUT], ["--seed -1", "from 0 to"]),
    "epochs not a number": Case("train", [*TRAIN[:2], "--epochs", "two", *OUT], ["invalid int value: 'two'", "--help"]),
    "lr not a number": Case("train", [*TRAIN, "--lr", "fast", *OUT], ["invalid float value: 'fast'", "--help"]),
    "empty out-dir": Case("train", [*TRAIN, "--out-dir", ""], ['--out-dir ""', "expected a path"]),
    "empty data-dir": Case("train", [*TRAIN, "--data-dir", "", *OUT], ['--data-dir ""', "expected a path"]),
    # options and trust (issue 19): one grammar for numbers and choices (ASCII digits, nothing completed)
    "epochs 1__0": Case("train", [*TRAIN[:2], "--epochs", "1__0", *OUT, "--print-config"],
                        ["argument --epochs: invalid int value: '1__0'", "in ASCII digits", "--help"]),
    "epochs in Arabic-Indic digits": Case("train", [*TRAIN[:2], "--epochs", "١", *OUT, "--print-config"],
                                          ["argument --epochs: invalid int value: '١'", "in ASCII digits"]),
    "epochs 01": Case("train", [*TRAIN[:2], "--epochs", "01", *OUT, "--print-config"],
                      ["argument --epochs: invalid int value: '01'", "without separators or leading zeros"]),
    "lr in Arabic-Indic digits": Case("train", [*TRAIN, "--lr", "٠.١", *OUT, "--print-config"],
                                      ["argument --lr: invalid float value: '٠.١'", "in ASCII digits"]),
    "lr 1__0": Case("train", [*TRAIN, "--lr", "1__0", *OUT, "--print-config"],
                    ["argument --lr: invalid float value: '1__0'", "without separators"]),
    "strategy not completed": Case("train", ["--strategy", "fine", *TRAIN[2:], *OUT, "--print-config"],
                                   ["argument --strategy: invalid choice: 'fine'", "(choose from 'finetune', 'feature_extractor'"]),
    "option name not completed": Case("train", [*TRAIN[:2], "--epo", "1", *OUT, "--print-config"],
                                      ["unrecognized argument '--epo'", "not abbreviated", "did you mean --epochs?", "--help"]),
    "replay --strategy not completed": Case("replay", ["--fixtures", "{fixtures}", "--out", "{case}/run", "--strategy", "fine"],
                                            ["argument --strategy: invalid choice: 'fine'", "choose from 'finetune'"]),
    "summary --strategy not completed": Case("summary", ["--strategy", "vgg"], ["argument --strategy: invalid choice: 'vgg'"]),
    "summary of a 1-channel input": Case("summary", ["--input-size", "1", "1", "224", "224"],
                                         ["--input-size [1, 1, 224, 224]: expected N 3 H W", "3 channels",
                                          "such as the default [1, 3, 224, 224]"]),
    "summary of an input too small for VGG-16": Case(
        "summary", ["--strategy", "vgg16_feature_extractor", "--input-size", "1", "3", "31", "31"],
        ["--input-size [1, 3, 31, 31]", "H and W at least 32 (vgg16's smallest input)"]),
    "zoo --arch not completed": Case("zoo", ["--out", "{case}/zoo", "--arch", "resnet"],
                                     ["argument --arch: invalid choice: 'resnet'", "'resnet18'"]),
    "pretrained --seed in Arabic-Indic digits": Case(
        "pretrained", ["--out", "{case}/net.pth", "--seed", "١"], ["argument --seed: invalid int value: '١'"], sides=("python",)),
    "export_fixtures --eval-per-class in Arabic-Indic digits": Case(
        "export_fixtures", ["--out", "{case}/fx", "--data-dir", "{data}", "--weights", "{net}", "--eval-per-class", "١"],
        ["argument --eval-per-class: invalid int value: '١'"], sides=("python",)),
    "standin_data --train in Arabic-Indic digits": Case(
        "standin_data", ["--out", "{case}/data", "--train", "١"], ["argument --train: invalid int value: '١'"], sides=("python",)),
    # options (issue 22): one parser per language, argparse's (reference_py/arguments.py, ruby_port/.../arguments.rb),
    # at every entry point: a mistyped option, a bad value, and "--", which ends the options (the words after it are
    # arguments: Python took "--" for an abbreviation of every option, Ruby dropped it and read what followed)
    "parser: train --progress": Case(  # Ruby's OptionParser took --[no-]progress, Python has --no-progress only
        "train", [*TRAIN[:4], "--progress", *OUT, "--print-config"], ["unrecognized argument '--progress'", "--help"]),
    "parser: train -- --epochs": Case(
        "train", ["--", "--epochs", "2", *OUT],
        ["unrecognized argument '--epochs' after '--' (the words after '--' are arguments, not options: give options "
         "before it)", "--help"]),
    "parser: replay, a strategy after another option": Case(  # nargs="+" ends at the next option
        "replay", ["--fixtures", "{case}/none", "--out", "{case}/run", "--strategy", "finetune", "--record-steps", "scratch"],
        ["unrecognized argument 'scratch'", "--help"]),
    "parser: replay --strategy without a value": Case(
        "replay", ["--fixtures", "{fixtures}", "--out", "{case}/run", "--strategy"],
        ["argument --strategy: expected at least one argument", "--help"]),
    "parser: replay -- --strategy": Case(
        "replay", ["--fixtures", "{fixtures}", "--out", "{case}/run", "--", "--strategy", "finetune"],
        ["unrecognized argument '--strategy' after '--'", "give options before it"]),
    "parser: preprocess with an option": Case(
        "preprocess", ["{case}/spec.json", "{case}/result", "--out", "{case}/other"], ["unrecognized argument '--out'", "--help"]),
    "parser: preprocess without OUT_STEM": Case(
        "preprocess", ["{case}/spec.json"], ["the following arguments are required: OUT_STEM", "--help"]),
    "parser: preprocess -- with a third word": Case(
        "preprocess", ["--", "{case}/spec.json", "{case}/result", "-v"], ["unrecognized argument '-v' after '--'"]),
    "parser: summary --input-size in commas": Case(
        "summary", ["--input-size", "1,3,224,224"], ["argument --input-size: expected 4 arguments", "--help"]),
    "parser: summary --input-size with a word": Case(
        "summary", ["--input-size", "1", "3", "224", "two"], ["argument --input-size: invalid int value: 'two'"]),
    "parser: summary -- --strategy": Case(
        "summary", ["--", "--strategy", "scratch"], ["unrecognized argument '--strategy' after '--'"]),
    "parser: zoo --archs": Case(
        "zoo", ["--out", "{case}/zoo", "--archs", "resnet18"], ["unrecognized argument '--archs'", "--help"]),
    "parser: zoo without --out": Case("zoo", ["--arch", "resnet18"], ["the following arguments are required: --out"]),
    "parser: zoo --arch, the second misspelled": Case(
        "zoo", ["--out", "{case}/zoo", "--arch", "resnet18", "resnet8"], ["argument --arch: invalid choice: 'resnet8'"]),
    "parser: zoo -- --arch": Case(
        "zoo", ["--out", "{case}/zoo", "--", "--arch", "resnet18"], ["unrecognized argument '--arch' after '--'"]),
    "parser: pretrained -- --seed": Case(
        "pretrained", ["--out", "{case}/net.pth", "--", "--seed", "1"], ["unrecognized argument '--seed' after '--'"],
        sides=("python",)),
    # outputs: never replace what the tool did not write
    "out-dir/STRATEGY is the user's folder": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["{case}/out/scratch", "was not written by train", "--out-dir"],
        user_folder("out/scratch")),
    "out-dir/STRATEGY holds a user's file": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["did not write (first: notes.txt)", "--out-dir"],
        user_folder("out/scratch", with_marker=True)),
    "out-dir/STRATEGY is a file": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["{case}/out/scratch", "is not a folder", "--out-dir"],
        user_file("out/scratch")),
    "out-dir is a file": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["{case}/out is not a folder", "--out-dir"], user_file("out")),
    "out-dir locked by another run": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["{case}/out/scratch is being written by another run", "wait"]),
    "replay --out is the user's folder": Case(
        "replay", ["--fixtures", "{fixtures}", "--out", "{case}/mine"], ["{case}/mine", "was not written by replay", "--out"],
        user_folder("mine")),
    "replay --out empty": Case("replay", ["--fixtures", "{fixtures}", "--out", ""], ['--out ""', "expected a path"]),
    "preprocess OUT_STEM is the user's file": Case(
        "preprocess", ["{case}/spec.json", "{case}/result"], ["{case}/result.json", "was not written by preprocess"],
        lambda folder, inputs: (spec_for(lambda path: Image.new("RGB", (16, 16)).save(path))(folder, inputs),
                                user_file("result.json")(folder, inputs))),
    "pretrained --out is the user's checkpoint": Case(
        "pretrained", ["--out", "{case}/net.pth"], ["{case}/net.pth", "was not written by pretrained", "--out"],
        weights_without_provenance, sides=("python",)),
    # images: the same checks on both sides, before any training
    "jpeg truncated after its header": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["ant_000.jpg: not a readable image", "replace or delete"],
        data_with(lambda data: truncate_after_header(first_jpeg(data)))),
    "decompression bomb": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT],
        ["bomb.png: not a readable image", "exceeds limit of 178956970 pixels", "decompression bomb"],
        data_with(lambda data: bomb_png(data / "train" / "ants" / "bomb.png"))),
    "16-bit grayscale png": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["gray16.png: more than 8 bits per sample", "convert it"],
        data_with(lambda data: png16(data / "val" / "bees" / "gray16.png", 1))),
    "16-bit rgb png": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["rgb16.png: more than 8 bits per sample", "convert it"],
        data_with(lambda data: png16(data / "train" / "bees" / "rgb16.png", 3))),
    "symlink loop to its own folder": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["ants/loop is a symbolic link to a folder", "replace it"],
        data_with(lambda data: os.symlink(".", data / "train" / "ants" / "loop"))),
    "symlink loop to the parent": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["bees/up is a symbolic link to a folder", "copy of the folder"],
        data_with(lambda data: os.symlink("..", data / "val" / "bees" / "up"))),
    "dangling jpg symlink": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["gone.jpg is a symbolic link to nothing", "remove it"],
        data_with(lambda data: os.symlink("nowhere.jpg", data / "train" / "bees" / "gone.jpg"))),
    "file name not UTF-8": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["ant_\\xff.jpg: the name is not valid UTF-8", "rename it"],
        data_with(invalid_utf8_name)),
    "preprocess: jpeg truncated after its header": Case(
        "preprocess", ["{case}/spec.json", "{case}/result"], ["image.jpg: not a readable image"], truncated_jpeg_spec),
    "preprocess: 16-bit png": Case(
        "preprocess", ["{case}/spec.json", "{case}/result"], ["image.png: more than 8 bits per sample"],
        spec_for(lambda path: png16(path, 1))),
    "preprocess: decompression bomb": Case(
        "preprocess", ["{case}/spec.json", "{case}/result"], ["image.png: not a readable image", "decompression bomb"],
        spec_for(bomb_png)),
    # images: what counts as an image (issue 19): ImageFolder takes every name with an image extension
    "fifo named .jpg in a class folder": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT],
        ["ants/pipe.jpg is a named pipe (FIFO), not an image file", "remove it or rename it"],
        data_with(lambda data: os.mkfifo(data / "train" / "ants" / "pipe.jpg"))),
    "socket named .jpg in a hidden folder": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT], ["bees/.thumbs/sock.jpg is a socket, not an image file"],
        data_with(lambda data: ((data / "val" / "bees" / ".thumbs").mkdir(),
                                os.mknod(data / "val" / "bees" / ".thumbs" / "sock.jpg", stat.S_IFSOCK | 0o600)))),
    "link to a device named .jpg": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT],
        ["bees/null.jpg is a symbolic link to a character device (/dev/null)", "remove it"],
        data_with(lambda data: os.symlink("/dev/null", data / "train" / "bees" / "null.jpg"))),
    "--data-dir a symbolic link loop": Case(  # Python read its STANDIN.json first: the bare ELOOP message
        "train", [*TRAIN, "--data-dir", "{case}/loop", *OUT], ["data dir {case}/loop not found", "--data-dir a folder"],
        lambda folder, inputs: os.symlink("loop", folder / "loop")),
    "--data-dir missing, no ./net.pth": Case(  # both made ./net.pth (and its .json) first, then looked at the data dir
        "train", ["--strategy", "finetune", "--no-progress", "--data-dir", "{case}/absent", *OUT],
        ["data dir {case}/absent not found", "pass --data-dir a folder"]),
    # writers: one claim rule (issue 19)
    "standin_data --out a user's folder": Case(
        "standin_data", ["--out", "{case}/mine", "--train", "1", "--val", "1"],
        ["{case}/mine", "was not written by standin_data", "--out"], users_data_folder("mine"), sides=("python",)),
    "export_fixtures --out a trainer's result": Case(
        "export_fixtures", ["--out", "{case}/result", "--data-dir", "{data}", "--weights", "{net}", "--strategy", "scratch",
                            "--eval-per-class", "1", "--replay-per-class", "1"],
        ["{case}/result was written by train", "not by export_fixtures", "--out"], train_result("result"),
        sides=("python",)),
    "export_fixtures --out a user's folder": Case(
        "export_fixtures", ["--out", "{case}/mine", "--data-dir", "{data}", "--weights", "{net}", "--strategy", "scratch",
                            "--eval-per-class", "1", "--replay-per-class", "1"],
        ["{case}/mine", "was not written by export_fixtures", "--out"], users_data_folder("mine"), sides=("python",)),
    "recorder into a user's folder": Case(
        RECORD, ["{case}/mine"], ["cannot record into {case}/mine", "files the recorder did not write", "give a new or empty folder"],
        for_the_recorder(users_data_folder("mine"))),
    "recorder into a read-only folder": Case(
        RECORD, ["{case}/ro"], ["cannot record into {case}/ro", "is not writable", "make it writable"],
        for_the_recorder(read_only_folder("ro"))),
    "zoo --out a user's folder": Case(
        "zoo", ["--out", "{case}/mine", "--arch", "resnet18"], ["{case}/mine", "was not written by zoo", "--out"],
        users_data_folder("mine")),
    "bench --out a user's file": Case(
        "bench/run.py", ["--out", "{case}/notes.md", "--quick"], ["{case}/notes.md", "was not written by bench", "--out"],
        user_file("notes.md"), sides=("python",)),
    "out-dir is read-only": Case(
        "train", [*TRAIN, "--data-dir", "{data}", *OUT], ["{case}/out is not writable", "make it writable", "--out-dir"],
        read_only_folder("out")),
    "replay --fixtures a file": Case(
        "replay", ["--fixtures", "{case}/fixtures.txt", "--out", "{case}/run"],
        ["{case}/fixtures.txt is a file, not a fixtures folder", "pass --fixtures the folder export_fixtures.py wrote"],
        user_file("fixtures.txt")),
    # fixtures: checked against the manifest before the replay computes anything
    "fixtures: manifest is a list": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["manifest.json", "holds a JSON array", "export_fixtures.py"],
        fixtures_with(lambda fixtures, manifest: [manifest])),
    "fixtures: another format": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ['format is "hymenoptera-fixtures/2"', "export_fixtures.py"],
        fixtures_with(lambda fixtures, manifest: {**manifest, "format": "hymenoptera-fixtures/2"})),
    "fixtures: another generator version": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["generator_version is 2", "export_fixtures.py"],
        fixtures_with(lambda fixtures, manifest: {**manifest, "generator_version": 2})),
    "fixtures: versions not strings": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["versions.torch is missing or not a version string"],
        fixtures_with(lambda fixtures, manifest: {**manifest, "versions": {**manifest["versions"], "torch": 113}})),
    "fixtures: batch_size 0": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["protocol.batch_size is 0", "at least 1"],
        fixtures_with(protocol_change("batch_size", 0))),
    "fixtures: no lr": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["protocol.lr is null", "finite number"],
        fixtures_with(protocol_change("lr", None))),
    "fixtures: images reshaped": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"],
        ["eval.json: images is float32 [4, 3, 448, 224], the manifest says float32 [4, 3, 224, 224]"],
        fixtures_with(eval_images_reshaped)),
    "fixtures: images float64, manifest too": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"],
        ["eval.json: images is float64 [4, 3, 224, 224], the replay needs float32 [N, 3, N, N]"],
        fixtures_with(eval_images_retyped_everywhere)),
    "fixtures: a bundle swapped from another strategy": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"],
        ["finetune/epoch_0.json: sha256", "(a file of another export, or changed)", "export_fixtures.py"],
        fixtures_with(bundle_swapped(listed=False))),
    "fixtures: a bundle swapped from another strategy, its sha256 listed": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"],
        ['finetune/epoch_0.json holds strategy "backbone_lr", epoch 0, its place is strategy "finetune", epoch 0'],
        fixtures_with(bundle_swapped(listed=True))),
    "fixtures: eval of another export": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"],
        ["eval.json: sha256", "(a file of another export, or changed)", "export_fixtures.py"],
        fixtures_with(eval_of_another_export)),
    "fixtures: lr edited": Case(
        "replay", ["--fixtures", "{case}/fixtures", "--out", "{case}/run"], ["protocol.lr is 0.002, generator 1 writes 0.001"],
        fixtures_with(protocol_change("lr", 0.002))),
    # weights: net.pth.json, and advice that never overwrites the user's file
    "--weights missing": Case(  # Ruby said "net.pth not found at PATH", Python "PATH: weights file not found"
        "train", ["--strategy", "finetune", "--weights", "{case}/nowhere.pth", "--data-dir", "{data}", *OUT],
        ["{case}/nowhere.pth: weights file not found", "create it with `python reference_py/pretrained.py --out {case}/nowhere.pth`"]),
    "--weights a folder": Case(
        "train", ["--strategy", "finetune", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["{case}/net.pth: weights file not found (nothing there, or not a regular file)", "pretrained.py --out {case}/net-1.pth"],
        lambda folder, inputs: (folder / "net.pth").mkdir()),
    "net.pth.json is a list": Case(
        "train", ["--strategy", "finetune", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["net.pth.json holds a JSON array", "pretrained.py --out {case}/net-1.pth"], weights_json("[1, 2]")),
    "net.pth without provenance": Case(
        "train", ["--strategy", "finetune", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["net.pth.json not found", "pretrained.py --out {case}/net-1.pth", "pass --weights {case}/net-1.pth"],
        weights_without_provenance),
    "net.pth.json says imagenet beside stand-in weights": Case(
        "train", ["--strategy", "finetune", "--epochs", "1", "--no-progress", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["net.pth.json says imagenet", f"does not start with {HUB_SHA256_PREFIX}", "pretrained.py --out {case}/net-1.pth"],
        sidecar_says_imagenet),
    "net.pth all NaN": Case(
        "train", ["--strategy", "finetune", "--epochs", "1", "--no-progress", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["net.pth: ", "entries hold NaN or infinite values (first: conv1.weight", "pretrained.py --out {case}/net-1.pth"],
        nan_weights),
    # the hostile campaign's leftovers (issue 19): outputs inside the data, the data dir's kind, one wording
    "--out-dir inside a class folder": Case(  # both trained and wrote their plots among the ants
        "train", [*TRAIN, "--data-dir", "{case}/data", "--out-dir", "{case}/data/train/ants"],
        ["--out-dir {case}/data/train/ants is inside the data dir {case}/data", "choose a folder outside the data dir"],
        copy_data),
    "--out-dir the data dir": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", "--out-dir", "{case}/data"],
        ["--out-dir {case}/data is inside the data dir {case}/data", "choose a folder outside the data dir"], copy_data),
    "--out-dir inside the data dir through a link": Case(
        "train", [*TRAIN, "--data-dir", "{case}/data", "--out-dir", "{case}/images/ants"],
        ["--out-dir {case}/images/ants is inside the data dir {case}/data", "choose a folder outside"],
        lambda folder, inputs: os.symlink(copy_data(folder, inputs) / "train", folder / "images")),
    "--out-dir inside the stand-in (no --data-dir)": Case(  # --print-config: the old code wrote nothing either
        "train", [*TRAIN, "--out-dir", str(standin_data.DEFAULT_DIR / "val" / "bees"), "--print-config"],
        [f"--out-dir {standin_data.DEFAULT_DIR / 'val' / 'bees'} is inside the data dir {standin_data.DEFAULT_DIR}",
         "choose a folder outside"]),
    "--data-dir a file": Case(  # both said "data dir ... not found"
        "train", [*TRAIN, "--data-dir", "{case}/data.txt", *OUT],
        ["data dir {case}/data.txt is not a folder", "pass --data-dir a folder in hymenoptera_data's layout"],
        user_file("data.txt")),
    "train and val with other classes": Case(  # Python listed them ['ants', 'bees'], Ruby ["ants", "bees"]
        "train", [*TRAIN, "--data-dir", "{case}/data", *OUT],
        ["train/ has the classes ants, bees but val/ has ants, bees, wasps", "give both the same class folders"],
        data_with(lambda data: shutil.copytree(data / "val" / "bees", data / "val" / "wasps"))),
    "--weights an empty file": Case(  # Python said "checkpoint of tensors ()", Ruby "(... not a ZIP archive)"
        "train", ["--strategy", "finetune", "--weights", "{case}/net.pth", "--data-dir", "{data}", *OUT],
        ["{case}/net.pth is empty (0 bytes), not a PyTorch checkpoint", "pretrained.py --out {case}/net-1.pth"],
        lambda folder, inputs: (folder / "net.pth").write_bytes(b"")),
    "recorder into a folder another recording holds": Case(  # two recorders on one folder deleted each other's files
        RECORD, ["{case}/rec"], ["cannot record into {case}/rec: it is being written by another run (process ", "lock {case}/.rec.lock",
                                 "wait for it to finish or give another folder"],
        for_the_recorder(lambda folder, inputs: None)),
}
HELD_LOCKS = {  # case: the lock another run holds while the case runs (relative to its folder), taken as that run would
    "out-dir locked by another run": "out/.scratch.lock",
    "recorder into a folder another recording holds": ".rec.lock",
}
RUNS = [(name, side) for name, case in CASES.items() for side in case.sides]


def content_sha256(path, known=None):
    """sha256 of a file's bytes, read in chunks: the fixtures' and weights' copies are tens of MB, and reading each
    whole into fresh memory cost this process a page fault per page (0.5 s of CPU a case, before and after).
    known: digests already read, by file (device, inode) and version (size, mtime), to take from and add to."""
    version = None
    if known is not None:
        stat_ = os.stat(path)
        version = (stat_.st_dev, stat_.st_ino, stat_.st_size, stat_.st_mtime_ns)
        if version in known:
            return known[version]
    with open(path, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    if version is not None:
        known[version] = digest
    return digest


# Digests of the files as the cases find them before their runs: a case's fixtures are hard links to the inputs' (109
# MB), the same file in every case, read once, not once a case. After a run every file is read afresh, so a run that
# changes a file fails its row all the same.
BEFORE_RUNS = {}


def snapshot(folder, known=None):
    """Every file and link below folder: relative path -> the sha256 of its bytes (or the link's target, or a named
    pipe's, socket's or device's type: reading a pipe would wait for a writer); known: see content_sha256."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            found[os.path.relpath(path, folder)] = (("link", os.readlink(path)) if stat.S_ISLNK(mode) else
                                                    ("sha256", content_sha256(path, known)) if stat.S_ISREG(mode) else
                                                    ("special", stat.S_IFMT(mode)))
    return found


def run_case(name, side, inputs, root, servers):
    case = CASES[name]
    folder = root / f"{name.replace(' ', '_').replace('/', '_')}-{side}"
    folder.mkdir()
    undo = case.prepare(folder, inputs) if case.prepare else None
    try:
        return run_prepared(name, side, case, folder, inputs, servers)
    finally:
        if callable(undo):  # prepare's own result otherwise (a lambda's tuple)
            undo()


def run_prepared(name, side, case, folder, inputs, servers):
    places = {**{k: str(v) for k, v in inputs.items()}, "case": str(folder)}
    command = command_for(side, case.script, [a.format(**places) for a in case.args])
    lock = None
    if name in HELD_LOCKS:  # another run holds the lock: we take it as that run would
        (folder / HELD_LOCKS[name]).parent.mkdir(exist_ok=True)
        lock = os.open(folder / HELD_LOCKS[name], os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.write(lock, f"{os.getpid()}\n".encode())
    before = snapshot(folder, BEFORE_RUNS)
    env = {**command.env(), "TORCH_HOME": str(folder / "torch_home")}
    if servers.serves(side, command, env):
        completed = servers.run(side, command, env, folder, timeout=300)
    else:
        completed = subprocess.run(command.argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if lock is not None:
        os.close(lock)
    return completed, before, snapshot(folder), [f.format(**places) for f in case.expect]


@pytest.fixture(scope="module")
def outcomes(inputs, tmp_path_factory, request, servers):
    """Every selected case (all, unless -k chose some) on every side, PARALLEL processes at a time."""
    root = tmp_path_factory.mktemp("bad_input_cases")
    chosen = {(item.callspec.params.get("name"), item.callspec.params.get("side"))
              for item in request.session.items if hasattr(item, "callspec")}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {run: pool.submit(run_case, *run, inputs, root, servers) for run in RUNS if run in chosen}
        return {run: future.result() for run, future in futures.items()}


@pytest.mark.parametrize("name,side", RUNS, ids=[f"{side}: {name}" for name, side in RUNS])
def test_bad_input_is_refused_in_one_line(name, side, outcomes):
    completed, before, after, expected = outcomes[(name, side)]
    assert completed.returncode == 2, f"exit {completed.returncode}; stderr:\n{completed.stderr}"
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{completed.stderr}"
    assert lines[0].startswith(error_prefix(side, CASES[name].script)), lines[0]
    for fragment in expected:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    changed = sorted(path for path in before if after.get(path) != before[path])
    assert not changed, f"files that existed before the run were changed or removed: {changed}"
    assert sorted(after) == sorted(before), f"the refused run left files behind: {sorted(set(after) - set(before))}"


# --- a refused recorder loads no LibTorch ------------------------------------------------------------------

EXIT_PROBE = {  # side: code that, as the process exits, says on stderr whether LibTorch is mapped into it
    "python": ("import atexit, runpy, sys\n"
               "atexit.register(lambda: print('libtorch mapped:', 'libtorch_cpu' in open('/proc/self/maps').read(), "
               "file=sys.stderr))\n"
               "runpy.run_module('parity.record', run_name='__main__', alter_sys=True)\n"),
    "ruby": "at_exit { warn \"libtorch mapped: #{File.read('/proc/self/maps').include?('libtorch_cpu') ? 'True' : 'False'}\" }\n",
}


def probed_recorder(side, folder, out):
    """RECORDER's command for `side` recording into `out`, run in `folder` with EXIT_PROBE."""
    command = RECORDER[side][0](str(out))
    if side == "python":  # -c runs the probe, which runs the recorder as -m would
        argv = [command.argv[0], "-c", EXIT_PROBE["python"], *command.argv[3:]]
    else:  # -r loads the probe before the recorder, so its at_exit runs last
        (folder / "exit_probe.rb").write_text(EXIT_PROBE["ruby"])
        argv = [command.argv[0], "-r", str(folder / "exit_probe.rb"), *command.argv[1:]]
    return subprocess.run(argv, cwd=folder, env=command.env(), capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("side", ["python", "ruby"])
def test_a_refused_recorder_loads_no_libtorch(side, tmp_path):
    """The recorder claims its folder before LibTorch loads, so refusing it costs no LibTorch start (2.5 CPU-s
    in Python, 1.3 in Ruby, before 2e0cab3); the same probe sees LibTorch in a recording that goes ahead."""
    for_the_recorder(users_data_folder("mine"))(tmp_path, None)
    refused = probed_recorder(side, tmp_path, tmp_path / "mine")
    assert refused.returncode == 2 and "cannot record into" in refused.stderr, refused.stderr
    assert "libtorch mapped: False" in refused.stderr.splitlines(), refused.stderr
    recorded = probed_recorder(side, tmp_path, tmp_path / "new")
    assert recorded.returncode == 0, recorded.stderr
    assert "libtorch mapped: True" in recorded.stderr.splitlines(), recorded.stderr


# --- two recorders on one folder ----------------------------------------------------------------------------

WAITING_PROGRAMS = {  # a recorded program that runs until the test creates "go", having said it started
    "program.py": "import os, time\nopen('started', 'w').close()\nwhile not os.path.exists('go'):\n    time.sleep(0.05)\n",
    "program.rb": "File.write('started', '')\nsleep 0.05 until File.exist?('go')\n",
}


@pytest.mark.parametrize("holder", ["python", "ruby"])
def test_a_second_recorder_on_a_folder_being_recorded_is_refused(holder, tmp_path):
    """While one side's recorder records into a folder, a second recorder of either side is refused in one line
    naming the first (its claim would delete the first one's files as they are written); the first run is whole."""
    for name, text in WAITING_PROGRAMS.items():
        (tmp_path / name).write_text(text)
    first = RECORDER[holder][0](str(tmp_path / "rec"))
    process = subprocess.Popen(first.argv, cwd=tmp_path, env=first.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "started").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        for side in ("python", "ruby"):
            second = RECORDER[side][0](str(tmp_path / "rec"))
            try:
                completed = subprocess.run(second.argv, cwd=tmp_path, env=second.env(), capture_output=True, text=True,
                                           timeout=120)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{side}: the second recorder was not refused: it ran the program, which waits")
            lines = completed.stderr.splitlines()
            assert completed.returncode == 2 and len(lines) == 1, f"{side}: exit {completed.returncode}:\n{completed.stderr}"
            assert lines[0] == (f"{RECORDER[side][1]}cannot record into {tmp_path / 'rec'}: it is being written by "
                                f"another run (process {process.pid}; lock {tmp_path / '.rec.lock'}); wait for it to "
                                f"finish or give another folder")
    finally:
        (tmp_path / "go").touch()
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert json.loads((tmp_path / "rec" / "run.json").read_text())["side"] == holder
    events = [json.loads(line) for line in (tmp_path / "rec" / "events.jsonl").read_text().splitlines()]
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "completed", events[-1:]
    assert not (tmp_path / ".rec.lock").exists(), "the lock was not released at the end of the recording"


# --- the hub cache's label -----------------------------------------------------------------------------------

def test_a_file_at_the_hub_cache_path_is_labelled_by_its_sha256(tmp_path, servers):
    """torch.hub's rule: resnet18-f37072fd.pth is ImageNet's file only if its sha256 starts with f37072fd."""
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    save_state_dict(checkpoints / HUB_FILE, standin_state_dict(seed=5))
    command = python("pretrained.py", "--out", tmp_path / "net.pth")
    completed = servers.run("python", command, {**command.env(), "TORCH_HOME": str(tmp_path / "torch_home")}, tmp_path,
                            timeout=300)
    assert completed.returncode == 0, completed.stderr
    record = json.loads((tmp_path / "net.pth.json").read_text())
    assert record["provenance"] == "user-supplied", record
    assert record["source_sha256"] and not record["source_sha256"].startswith(HUB_SHA256_PREFIX)
    assert "labelled user-supplied" in completed.stderr


# --- crash consistency ---------------------------------------------------------------------------------------

# The trainers load in their own process here: at both points the kills aim at, no worker is alive at the default
# --workers 4 either (the lock is taken before LibTorch loads; the temporary folder appears after the loaders' last
# pass has ended its workers), so workers only cost a process per worker per pass, 5 CPU-s a finished run. The
# free-running tests run the trainers at the default. Each is forked by its language's server (Servers), a process
# of its own that the signals reach as they reach `python reference_py/train.py` or `ruby ruby_port/bin/train`.
def start_train(servers, side, data, out):
    command = COMMANDS[side](SCRIPTS[side]("train"), *TRAIN, "--workers", "0", "--data-dir", data, "--out-dir", out)
    return servers.start(side, command, command.env(), out.parent)


def kill_when(process, ready, signum, timeout=240):
    """Send signum once ready() holds; returns whether it was sent before the process ended by itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            process.send_signal(signum)
            process.communicate(timeout=120)
            return True
        time.sleep(0.005)
    process.communicate(timeout=120)
    return False


def leftovers(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def crash_sequence(servers, side, data, work):
    """A finished run, then runs killed while training and while writing; each must keep the first result."""
    out = work / side
    out.mkdir()
    (out / "notes.txt").write_text("the user's, beside the results\n")
    first = start_train(servers, side, data, out)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    kept = snapshot(out)
    result = out / "scratch"
    writing = lambda: any(p.name.startswith(".scratch.") and p.name.endswith(".tmp") for p in out.iterdir())
    training = lambda: (result.parent / ".scratch.lock").exists()
    events = []
    for point, ready in (("training", training), ("writing", writing)):
        for signum in (signal.SIGTERM, signal.SIGKILL):
            process = start_train(servers, side, data, out)
            hit = kill_when(process, ready, signum)
            events.append((point, signum.name, hit, process.returncode, leftovers(out)))
            now = snapshot(out)
            assert {k: v for k, v in now.items() if k in kept} == kept, (
                f"{side}: killed ({signum.name}) while {point}, and the earlier result changed")
            assert not any(name.endswith(".old") for name in leftovers(out)), events[-1]
            if signum == signal.SIGTERM and hit:  # a clean exit: nothing half-written, no lock
                assert leftovers(out) == [], events[-1]
    last = start_train(servers, side, data, out)
    _, stderr = last.communicate(timeout=300)
    assert last.returncode == 0, stderr
    assert leftovers(out) == [], f"{side}: left after a complete run: {leftovers(out)}"
    assert (out / "notes.txt").read_text().startswith("the user's")
    return events, stderr


def test_killed_runs_lose_nothing_and_leave_nothing_half_written(inputs, tmp_path, servers):
    with ThreadPoolExecutor(max_workers=2) as pool:
        sequences = {side: pool.submit(crash_sequence, servers, side, inputs["data"], tmp_path) for side in ("python", "ruby")}
        results = {side: future.result() for side, future in sequences.items()}
    for side, (events, _) in results.items():
        hits = [(point, name) for point, name, hit, _, _ in events if hit]
        assert ("writing", "SIGKILL") in hits and ("training", "SIGTERM") in hits, f"{side}: signals that hit: {events}"
        killed_writing = next(e for e in events if e[:3] == ("writing", "SIGKILL", True))
        assert any(name.endswith(".tmp") for name in killed_writing[4]), (
            f"{side}: SIGKILL while writing left no temporary folder to tidy (the test did not hit its point): {events}")
