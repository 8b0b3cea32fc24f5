"""The DataLoader of both sides, batch for batch: PyTorch's torch.utils.data.DataLoader
(parity/data_loader_side.py) and Torch::Utils::Data::DataLoader with pytorch_parity in Ruby
(parity/data_loader_side.rb), both started in the background at collection.

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
import sys
import tempfile
from pathlib import Path

import pytest

from parity.compare import check, measure_dict
from parity.early import RunsInFolder, started, starts_early
from parity.settings import ROOT, RUBY_PORT
from parity.sides import Command, start_served
from parity.tolerances import BIT_IDENTICAL, for_quantity
from reference_py.data import SPLITS
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
DRAWS = "DataLoader batches (a dataset drawing from the global generator)"
IMAGES = "DataLoader batches (ImageFolder, the tutorial's transforms)"


@starts_early("batches")  # the fixture's name: its runs start at collection (as "ruby_loaders" they never did)
def start_loaders(session, background):
    """Both sides' loaders, each forked by the session's server of its language (parity/sides.py's session_server,
    which the session starts anyway): a process of its own paid the interpreter's and LibTorch's start and teardown."""
    folder = Path(tempfile.mkdtemp(prefix="parity-data-loader-"))  # this session's own
    data_dir = generate(folder / "images", seed=0, counts=IMAGE_COUNTS)
    spec = {"scenarios": SCENARIOS,
            "images": {"data_dir": str(data_dir), "batch_size": IMAGE_BATCH_SIZE, "loaders": IMAGE_LOADERS}}
    (folder / "spec.json").write_text(json.dumps(spec))
    ruby = Command("Ruby", ["ruby", str(ROOT / "parity" / "data_loader_side.rb"), str(RUBY_PORT),
                            str(folder / "spec.json"), str(folder / "ruby")])
    python = Command("Python", [sys.executable, "-m", "parity.data_loader_side", str(folder / "spec.json"),
                                str(folder / "python")])
    return RunsInFolder(folder, start_served(python, ruby, background=background))


@pytest.fixture(scope="module")
def batches(request):
    """{"python": ..., "ruby": ...}: every batch, by name."""
    runs = started("batches", request.session)
    try:
        runs.running.wait()
        yield {side: read_bundle(runs.folder / side, mapped=True) for side in ("python", "ruby")}
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
