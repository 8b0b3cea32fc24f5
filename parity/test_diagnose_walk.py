"""The diagnosis (parity/diagnose.py) on runs written here, event by event, in the run format: where it
puts the first divergence, what it calls a consequence, how it reads a run that stopped, bad input."""

import pytest
import torch

from parity import diagnose
from parity.record import tensor_bytes
from parity.run_format import RunWriter, read_run

STACK = {"libtorch_library": "/lib/libtorch_cpu.so", "threads": 1}


def program(order=(2, 0, 3, 1), image=None, module_b=1.0, losses=(0.7, 0.6, 0.5), lrs=(0.1, 0.010000000000000002),
            modules=("a", "b"), stop_after=None, error=None, killed=False):
    """The events of a small training run: a shuffled loader, a Compose of two transforms, a model of
    modules `modules`, one backward and step per loss, a scheduler step after the second."""
    image = torch.arange(12, dtype=torch.uint8).reshape(2, 2, 3) if image is None else image
    t = lambda value: {"output": tensor_bytes(torch.as_tensor(value))}
    events = [
        ("loader", {"loader": 0, "dataset": "Set", "dataset_size": 4, "batch_size": 2, "shuffle": True, "num_workers": 0,
                    "drop_last": False}, None),
        ("pass", {"loader": 0, "pass": 0, "step": 0}, None),
        ("indices", {"loader": 0, "pass": 0, "batch": 0, "indices": list(order[:2])}, None),
        ("compose", {"loader": 0, "transforms": ["Flip", "Scale"]}, None),
        ("transform", {"loader": 0, "position": 0, "transform": "input"}, t(image)),
        ("transform", {"loader": 0, "position": 1, "transform": "Flip"}, t(image.flip(1))),
        ("transform", {"loader": 0, "position": 2, "transform": "Scale"}, t(image.flip(1).float() / 255)),
        ("batch", {"loader": 0}, {"batch.0": tensor_bytes(image.float().sum() + torch.zeros(2, 3))}),
        ("model", {"modules": list(modules), "stack": STACK}, None),
        ("initial_state", {}, {"a.weight": tensor_bytes(torch.ones(2)), "b.count": tensor_bytes(torch.tensor(0))}),
        ("model_input", {"at": {"loader": 0, "pass": 0, "batch": 0}}, {"input.0": tensor_bytes(torch.ones(2, 3))}),
    ]
    for name in modules:
        events.append(("module_output", {"module": name}, t(torch.full((2,), module_b if name == "b" else 1.0))))
    events.append(("buffers_after_forward", {}, {"b.count": tensor_bytes(torch.tensor(1))}))
    events.append(("indices", {"loader": 0, "pass": 0, "batch": 1, "indices": list(order[2:])}, None))
    for step, loss in enumerate(losses):
        events.append(("loss", {"backward": step, "step": step, "value": loss}, {"loss": tensor_bytes(torch.tensor(loss))}))
        if step == 0:
            events.append(("gradients", {}, {"a.weight": tensor_bytes(torch.full((2,), loss))}))
            events.append(("optimizer", {"after_step": 1, "step": 1, "scheduler_steps": 0, "groups": [{"lr": lrs[0], "momentum": 0.9}]},
                           {"a.weight.momentum_buffer": tensor_bytes(torch.full((2,), loss))}))
        if step == 1:
            events.append(("scheduler", {"scheduler": 0, "scheduler_step": 1, "class": "StepLR", "step": 2, "lrs": [lrs[1]],
                                         "settings": {"step_size": 1, "gamma": 0.1}}, None))
    if stop_after is not None:
        kinds = [kind for kind, _, _ in events]
        events = events[:kinds.index(stop_after) + 1]
    if not killed:
        end = {"status": "completed", "backwards": len(losses)}
        if error:
            end = {"status": "raised", "error": {"class": error[0], "message": error[1], "where": "port.rb:9"}}
        events.append(("end", {**end, "pytorch_parity": [], "stack": STACK}, None))
    return events


def run(path, events, side):
    writer = RunWriter(path, {"side": side, "script": f"program.{'py' if side == 'python' else 'rb'}", "stack": STACK})
    for kind, fields, arrays in events:
        writer.event(kind, fields, arrays)
    writer.close()
    return read_run(path)


def diagnosed(tmp_path, **ruby):
    return diagnose.diagnose(run(tmp_path / "python", program(), "python"), run(tmp_path / "ruby", program(**ruby), "ruby"))


def test_identical_runs(tmp_path, capsys):
    result = diagnosed(tmp_path)
    assert result.identical and result.same_stack
    assert diagnose.main([str(tmp_path / "python"), str(tmp_path / "ruby")]) == 0
    assert "bit for bit" in capsys.readouterr().out
    assert (tmp_path / "diagnosis-python-vs-ruby.md").exists() and (tmp_path / "diagnosis-python-vs-ruby-losses.png").exists()


def test_the_data_order_first_then_what_follows_from_it(tmp_path):
    result = diagnosed(tmp_path, order=(0, 2, 3, 1), image=torch.zeros(2, 2, 3, dtype=torch.uint8))
    first, later = result.divergences[0], result.divergences[1:]
    assert first.quantity.key == ("order", 0, 0) and first.match.file == "torch/utils/data/data_loader.rb"
    assert "from position 0 (batch 0): ruby [0, 2, 3, 1], python [2, 0, 3, 1]" in first.message()
    assert later and all(d.cause is first for d in later)


def test_a_module_output_first(tmp_path):
    result = diagnosed(tmp_path, module_b=2.0, losses=(0.7, 0.65, 0.5))
    first = result.divergences[0]
    assert first.quantity.key == ("module_output", "b") and first.match is None
    assert [d.quantity.key for d in result.divergences[1:]] == [("loss", 1)]
    assert result.divergences[1].cause is first


def test_a_learning_rate_in_closed_form_is_independent_and_known(tmp_path):
    result = diagnosed(tmp_path, lrs=(0.1, 0.01))
    (first,) = result.divergences
    assert first.quantity.key == ("scheduler", 0, 1) and first.cause is None
    assert first.match.file == "torch/optim/lr_scheduler/step_lr.rb"


def test_a_run_that_stopped_is_named_where_it_stopped_with_its_error(tmp_path):
    result = diagnosed(tmp_path, stop_after="model", error=("TypeError", "no _dump_data is defined for class Torch::NN::Parameter"))
    first = result.divergences[0]
    assert first.stop and first.quantity.key == ("initial_state",)
    assert first.message().startswith("the ruby run stopped: no _dump_data is defined for class Torch::NN::Parameter (TypeError) at port.rb:9")
    assert first.match.file == "torch/tensor/marshal.rb"
    assert len(result.not_reached) > 5 and len(result.divergences) == 1


def test_a_killed_run_ended_without_a_word(tmp_path):
    result = diagnosed(tmp_path, stop_after="batch", killed=True)
    assert result.divergences[0].stop and "without a word" in result.divergences[0].message()


def test_fewer_steps_and_other_modules(tmp_path):
    result = diagnosed(tmp_path, losses=(0.7, 0.6), modules=("a", "c"))
    keys = {d.quantity.key: d for d in result.divergences}
    assert "ruby's model has no b; only ruby's has c" in keys[("model",)].message()
    assert "recorded in python, not in ruby" in keys[("module_output", "b")].message()
    assert "ruby made 2 backward passes in all" in keys[("loss", 2)].message()
    assert "recorded in ruby, not in python" in keys[("module_output", "c")].message()


@pytest.mark.parametrize("swap", [True, False])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, swap):
    run(tmp_path / "python", program(), "python")
    run(tmp_path / "ruby", program(), "ruby")
    args = [str(tmp_path / "ruby"), str(tmp_path / "python")] if swap else [str(tmp_path / "python"), str(tmp_path / "missing")]
    assert diagnose.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("parity.diagnose: ")
    assert ("give the python run first" if swap else "no such folder") in err
