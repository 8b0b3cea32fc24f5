"""The DataLoader of both sides, batch for batch: PyTorch's torch.utils.data.DataLoader here, and
Torch::Utils::Data::DataLoader with pytorch_parity in Ruby (parity/data_loader_side.rb, started in the
background at collection).

- A map-style dataset whose samples draw from the global generator (torch.rand(3)) and carry their
  index, so that every random number shows: the base seed and the sampler's draws in the loader's
  process, each worker's generator seeded base seed + worker id, batches dealt round-robin. Shuffled
  without and with a generator, in order with drop_last, with a worker_init_fn; in batches of 3 with
  a partial last batch; num_workers 0 to 8, more batches than workers; two passes (fresh workers, a new
  base seed); and the global generator afterwards.
- The tutorial's ImageFolder and transforms (reference_py/data.py, ruby_port/lib/hymenoptera/data.rb) on
  a few stand-in images (a partial last batch in both splits), shuffled, num_workers 0, 2 and 4.
Every batch is expected bit-identical.
"""

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from parity.compare import check, measure_dict
from parity.early import RunsInFolder, started, starts_early
from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command, start_together
from parity.tolerances import BIT_IDENTICAL, for_quantity
from reference_py.data import SPLITS, image_datasets
from reference_py.standin_data import generate
from reference_py.tensor_io import read_bundle

WORKERS = range(9)
# 3n + 4 samples in batches of 3: n + 2 batches, the last of one sample, so that dealing goes round the
# workers and on; two passes up to 3 workers (each worker process costs about 0.1 s of CPU per side)
SCENARIOS = (
    [{"name": f"shuffle, num_workers {n}", "seed": 100 + n, "size": 3 * n + 4, "batch_size": 3, "shuffle": True,
      "generator_seed": None, "drop_last": False, "num_workers": n, "worker_init": False, "passes": 2 if n <= 3 else 1}
     for n in WORKERS]
    + [{"name": f"shuffle with a generator, num_workers {n}", "seed": 200 + n, "size": 10, "batch_size": 3,
        "shuffle": True, "generator_seed": 7 + n, "drop_last": False, "num_workers": n, "worker_init": False,
        "passes": 2} for n in (0, 3)]
    + [{"name": "in order, drop_last, num_workers 2", "seed": 300, "size": 10, "batch_size": 3, "shuffle": False,
        "generator_seed": None, "drop_last": True, "num_workers": 2, "worker_init": False, "passes": 1},
       {"name": "worker_init_fn, num_workers 2", "seed": 400, "size": 10, "batch_size": 3, "shuffle": True,
        "generator_seed": None, "drop_last": False, "num_workers": 2, "worker_init": True, "passes": 1}]
)
IMAGE_COUNTS = {"train": {"ants": 4, "bees": 3}, "val": {"ants": 3, "bees": 2}}  # 7 and 5: partial batches of 4
IMAGE_LOADERS = [{"name": f"{split}, num_workers {n}", "split": split, "num_workers": n, "seed": 500 + n}
                 for n in (0, 2, 4) for split in SPLITS]
IMAGE_BATCH_SIZE = 4
# PyTorch warns when there are more workers than cores (as the Ruby side does, on its stderr)
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
DRAWS = "DataLoader batches (a dataset drawing from the global generator)"
IMAGES = "DataLoader batches (ImageFolder, the tutorial's transforms)"


class Draws(Dataset):
    """ruby_port/test/draws.rb's Draws: a sample draws from the global generator and carries its index."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        return torch.rand(3), index


def reseed(worker_id):
    """data_loader_side.rb's worker_init_fn: the worker's generator seeded again from its seed and id."""
    torch.manual_seed(torch.utils.data.get_worker_info().seed % 1000 * 7 + worker_id)


def python_batches(spec):
    tensors = {}
    for scenario in spec["scenarios"]:
        name = scenario["name"]
        torch.manual_seed(scenario["seed"])
        generator = None if scenario["generator_seed"] is None else torch.Generator().manual_seed(scenario["generator_seed"])
        loader = DataLoader(Draws(scenario["size"]), batch_size=scenario["batch_size"], shuffle=scenario["shuffle"],
                            generator=generator, drop_last=scenario["drop_last"], num_workers=scenario["num_workers"],
                            worker_init_fn=reseed if scenario["worker_init"] else None)
        for pass_index in range(scenario["passes"]):
            for batch, (samples, indices) in enumerate(loader):
                tensors[f"{name}/pass{pass_index}/batch{batch}/samples"] = samples
                tensors[f"{name}/pass{pass_index}/batch{batch}/indices"] = indices
        tensors[f"{name}/global generator after"] = torch.rand(2)
    images = spec["images"]
    image_sets = image_datasets(images["data_dir"])
    for loader_spec in images["loaders"]:
        torch.manual_seed(loader_spec["seed"])
        loader = DataLoader(image_sets[loader_spec["split"]], batch_size=images["batch_size"], shuffle=True,
                            num_workers=loader_spec["num_workers"])
        for batch, (inputs, labels) in enumerate(loader):
            tensors[f"{loader_spec['name']}/batch{batch}/inputs"] = inputs
            tensors[f"{loader_spec['name']}/batch{batch}/labels"] = labels
    return tensors


@dataclass
class Loaders(RunsInFolder):
    spec: dict


@starts_early("ruby_loaders")
def start_ruby_loaders(session, background):
    folder = Path(tempfile.mkdtemp(prefix="parity-data-loader-"))  # this session's own
    data_dir = generate(folder / "images", seed=0, counts=IMAGE_COUNTS)
    spec = {"scenarios": SCENARIOS,
            "images": {"data_dir": str(data_dir), "batch_size": IMAGE_BATCH_SIZE, "loaders": IMAGE_LOADERS}}
    (folder / "spec.json").write_text(json.dumps(spec))
    command = Command("Ruby", ["ruby", str(ROOT / "parity" / "data_loader_side.rb"), str(RUBY_PORT),
                               str(folder / "spec.json"), str(folder / "ruby")])
    return Loaders(folder, start_together(command, background=background), spec)


@pytest.fixture(scope="module")
def batches(request):
    """{"python": ..., "ruby": ...}: every batch, by name."""
    runs = started("ruby_loaders", request.session)
    try:
        python = python_batches(runs.spec)
        runs.running.wait()
        yield {"python": python, "ruby": read_bundle(runs.folder / "ruby")}
    finally:
        shutil.rmtree(runs.folder, ignore_errors=True)


def of(tensors, prefix):
    return {key: tensor for key, tensor in tensors.items() if key.startswith(prefix + "/")}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario["name"])
def test_a_dataset_drawing_from_the_global_generator_gives_the_same_batches(scenario, batches, recorder):
    name = scenario["name"]
    check(measure_dict(of(batches["ruby"], name), of(batches["python"], name), quantity=DRAWS, tolerance=BIT_IDENTICAL,
                       scenario=name), recorder)


@pytest.mark.parametrize("loader", IMAGE_LOADERS, ids=lambda loader: loader["name"])
def test_the_tutorials_image_folder_gives_the_same_batches(loader, batches, recorder):
    name = loader["name"]
    check(measure_dict(of(batches["ruby"], name), of(batches["python"], name), quantity=IMAGES,
                       tolerance=for_quantity("inputs", same_stack=True), loader=name), recorder)
