"""What this process runs on: library versions, the LibTorch file actually loaded, threads.

The twin of ruby_port/lib/hymenoptera/runtime_info.rb: both sides describe themselves alike, so
the parity suite can tell whether they ran the same LibTorch with the same thread count.
"""

import os
import platform
import re

import torch
import torchvision


def loaded_libtorch():
    """The resolved path of the libtorch_cpu shared library mapped into this process, or None."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            for line in maps:
                match = re.search(r"(/\S*/libtorch_cpu\.so\S*)$", line.strip())
                if match:
                    return os.path.realpath(match.group(1))
    except OSError:
        return None
    return None


def libtorch_version():
    match = re.search(r"TORCH_VERSION=([\w.+-]+)", torch.__config__.show())
    return match.group(1).rstrip(",") if match else None


def describe(threads):
    return {
        "side": "python",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "libtorch": libtorch_version(),
        "libtorch_library": loaded_libtorch(),
        "threads": threads,
    }
