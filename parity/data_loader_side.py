"""The Python side of parity/test_data_loader.py: SPEC's loaders through PyTorch's DataLoader, every batch into
one tensor bundle, as parity/data_loader_side.rb makes the Ruby side's.

    python -m parity.data_loader_side SPEC.json OUT_STEM

A process of its own, started with the Ruby side at collection: each worker is a fork of the loading process,
and forks of the suite's own process (which holds what every test before read) cost it about 23 s of CPU in
bin/test for these batches; here 9-13 s, its start included.
"""

import json
import sys
import warnings

import torch
from torch.utils.data import DataLoader, Dataset

from reference_py import runtime_info, threads
from reference_py.data import image_datasets
from reference_py.tensor_io import write_bundle


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


def batches(spec):
    """Every batch of the spec's loaders, by name."""
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
    images = spec.get("images")
    if images:
        image_sets = image_datasets(images["data_dir"])
        for loader_spec in images["loaders"]:
            torch.manual_seed(loader_spec["seed"])
            loader = DataLoader(image_sets[loader_spec["split"]], batch_size=images["batch_size"], shuffle=True,
                                num_workers=loader_spec["num_workers"])
            for batch, (inputs, labels) in enumerate(loader):
                tensors[f"{loader_spec['name']}/batch{batch}/inputs"] = inputs
                tensors[f"{loader_spec['name']}/batch{batch}/labels"] = labels
    return tensors


def main(argv):
    spec_path, out = argv
    # PyTorch warns when there are more workers than cores (as the Ruby side does, on its stderr)
    warnings.filterwarnings("ignore", "This DataLoader will create", UserWarning)
    count = threads.configure()
    write_bundle(out, batches(json.loads(open(spec_path).read())), meta=runtime_info.describe(count))


if __name__ == "__main__":
    main(sys.argv[1:])
