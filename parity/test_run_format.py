"""The run format's writer and reader (parity/run_format.py) and the Python recorder's command
(parity/record.py); the Ruby recorder's twins of these tests are ruby_port/test/record_test.rb."""

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from parity import record
from parity.record import bytes_of, flatten, parse_seed, tensor_bytes
from parity.run_format import FORMAT, RecordError, RunError, RunWriter, read_run


def write(path, events=(), side="python"):
    writer = RunWriter(path, {"side": side, "script": "program.py"})
    for kind, fields, arrays in events:
        writer.event(kind, fields, arrays)
    writer.close()
    return path


@pytest.mark.parametrize("tensor", [
    torch.arange(6, dtype=torch.float32).reshape(2, 3), torch.tensor(2.5, dtype=torch.float64),
    torch.tensor([True, False]), torch.arange(4, dtype=torch.int64).reshape(2, 2).t(),
    torch.tensor([1.5, -2.0], dtype=torch.float16), torch.tensor([3.0], dtype=torch.bfloat16), torch.zeros(0, 3),
    torch.tensor([[1, 2]], dtype=torch.uint8)])
def test_arrays_come_back_as_written(tmp_path, tensor):
    run = read_run(write(tmp_path / "run", [("loss", {"backward": 0}, {"value": tensor_bytes(tensor)})]))
    back = run.tensors(run.events[0])["value"]
    assert back.dtype == tensor.dtype and back.shape == tensor.shape and torch.equal(back, tensor.contiguous())


def test_images_are_height_width_bands():
    gray = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3))
    array = bytes_of(gray)
    assert (array.form, array.dtype, array.shape) == ("image", "uint8", [2, 3, 1])
    rgb = bytes_of(gray.convert("RGB"))
    assert rgb.shape == [2, 3, 3] and rgb.data[:3] == bytes([0, 0, 0]) and rgb.data[3:6] == bytes([1, 1, 1])


def test_containers_are_flattened_by_position_and_key():
    arrays, values = flatten([torch.zeros(1), {"label": 3, "mask": torch.ones(2)}, "name"], "batch")
    assert list(arrays) == ["batch.0", "batch.1.mask"]
    assert values == {"batch.1.label": 3, "batch.2": "name"}


def test_the_folder_is_claimed_new_empty_or_an_earlier_run(tmp_path):
    deep = tmp_path / "a" / "b" / "run"
    write(deep)
    assert json.loads((deep / "run.json").read_text())["format"] == FORMAT
    (deep / "tensors-1.bin").write_bytes(b"left by an earlier run")
    write(deep)
    assert not (deep / "tensors-1.bin").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RecordError) as refused:
        write(foreign)
    assert str(refused.value) == (f"cannot record into {foreign}: it holds files the recorder did not write (notes.txt); "
                                  f"give a new or empty folder")
    assert os.listdir(foreign) == ["notes.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(RecordError, match="it is a file"):
        write(tmp_path / "file")


def test_a_folder_being_recorded_is_refused_until_the_recording_ends(tmp_path):
    """The writers' lock (.NAME.lock beside the folder, the trainers' too): a second claim would delete the files
    the first writer is writing (ruby_port/test/record_test.rb's twin)."""
    first = RunWriter(tmp_path / "run", {"side": "python", "script": "program.py"})
    first.event("loss", {"value": 1.0})
    with pytest.raises(RecordError) as refused:
        write(tmp_path / "run")
    assert str(refused.value) == (f"cannot record into {tmp_path / 'run'}: it is being written by another run (process "
                                  f"{os.getpid()}; lock {tmp_path / '.run.lock'}); wait for it to finish or give another folder")
    assert [json.loads(line)["kind"] for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()] == ["loss"]
    first.close()
    assert not (tmp_path / ".run.lock").exists()
    write(tmp_path / "run")


def test_what_a_killed_recorder_left_is_tidied_by_its_name_alone(tmp_path):
    """A kill while run.json was written leaves .run.json.PID.tmp: the next run removes it (in a folder of its
    own, or an empty one), and names that only resemble it count as the user's."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".run.json.4242.tmp").write_text('{"format": "pytorch-parity-run/1", "si')
    write(run)
    assert sorted(os.listdir(run)) == ["events.jsonl", "run.json"]
    (run / ".run.json.4243.tmp").write_text("{")
    write(run)
    assert sorted(os.listdir(run)) == ["events.jsonl", "run.json"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".run.json.backup.tmp").write_text("the user's")
    with pytest.raises(RecordError, match=r"did not write \(\.run\.json\.backup\.tmp\)"):
        write(mine)
    assert (mine / ".run.json.backup.tmp").read_text() == "the user's"


def test_a_folder_it_may_not_write_in_is_refused_with_the_fix(tmp_path, monkeypatch):
    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(Path, "write_text", refused)
    with pytest.raises(RecordError) as error:
        write(tmp_path / "run")
    assert str(error.value) == (f"cannot record into {tmp_path / 'run'}: it is not writable (Permission denied); "
                                f"make it writable or give another folder")


def test_a_last_line_cut_short_is_left_out(tmp_path):
    run = write(tmp_path / "run", [("loss", {"backward": 0, "value": 1.0}, None)])
    with open(run / "events.jsonl", "a") as events:
        events.write('{"kind": "loss", "backw')
    read = read_run(run)
    assert read.truncated and [e["kind"] for e in read.events] == ["loss"] and read.end is None


def folder(path, files):
    """A folder holding files (name -> text); None: no folder at all."""
    if files is not None:
        path.mkdir()
        for name, text in files.items():
            (path / name).write_text(text)
    return path


@pytest.mark.parametrize("files, words", [
    (None, "no such folder"),
    ({}, "an empty folder"),
    ({"x.txt": ""}, "no run.json"),
    ({"run.json": '{"format": "pytorch-parity-run/0"}'}, "'pytorch-parity-run/0'"),
    ({"run.json": "{"}, "not valid JSON"),
    ({"run.json": json.dumps({"format": FORMAT})}, "no events.jsonl"),
    ({"run.json": json.dumps({"format": FORMAT}), "events.jsonl": "[1]\n"}, "line 1 is not an event"),
])
def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, files, words):
    with pytest.raises(RunError) as error:
        read_run(folder(tmp_path / "run", files))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_seed_bounds():
    assert parse_seed("0") == 0 and parse_seed(str(2**64 - 1)) == 2**64 - 1
    for bad in ("-1", str(2**64), "1.5", "x"):
        with pytest.raises(RecordError, match=r"^the seed .* is not a whole number from 0 to 18446744073709551615"):
            parse_seed(bad)


def record_in_a_child(argv):
    """`python -m parity.record ARGV` in a forked child of this process (its hooks stay there); its exit status."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            torch.set_num_threads(1)  # as a DataLoader worker does: the parent's OpenMP pool does not survive a fork
            status = record.main(argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 - the script's error, which the recorder re-raises
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_the_recorder_runs_a_script_as_python_would_and_keeps_its_error(tmp_path, capfd):
    script = tmp_path / "program.py"
    script.write_text("import sys\nimport torch\nprint(sys.argv[1:], torch.rand(1).item())\n"
                      "model = torch.nn.Linear(2, 1)\nmodel(torch.ones(1, 2)).sum().backward()\n"
                      "raise ValueError('the port broke')\n")
    out = tmp_path / "run"
    status = record_in_a_child(["--out", str(out), "--seed", "7", str(script), "a", "--b"])
    printed = capfd.readouterr()
    torch.manual_seed(7)
    assert printed.out == f"['a', '--b'] {torch.rand(1).item()}\n"
    assert status == 1 and printed.err.rstrip().endswith("ValueError: the port broke")
    run = read_run(out)
    assert [e["kind"] for e in run.events] == ["model", "initial_state", "model_input", "module_output", "model_output",
                                               "buffers_after_forward", "loss", "gradients", "end"]
    error = run.end["error"]
    assert (run.end["status"], error["class"], error["message"]) == ("raised", "ValueError", "the port broke")
    assert error["where"].endswith("program.py:6:in `<module>'")


def test_bad_input_to_the_recorder_is_one_line(tmp_path, capsys):
    assert record.main(["--out", str(tmp_path / "run"), "--seed", "-1", "x.py"]) == 2
    assert capsys.readouterr().err == f"parity.record: the seed -1 is not a whole number from 0 to {2**64 - 1} (--seed N)\n"
    assert record.main(["--out", str(tmp_path / "run"), str(tmp_path / "missing.py")]) == 2
    assert capsys.readouterr().err == f"parity.record: {tmp_path / 'missing.py'}: no such script\n"
    assert not (tmp_path / "run").exists()
