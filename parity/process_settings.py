"""Settings for the test command's processes that change how fast they run, never what they compute.
Set in pytest's environment before anything else loads (root conftest.py), so that every process the
tests start inherits them; pytest's own malloc is set with mallopt.

- glibc's malloc keeps freed memory for the next tensor (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_).
  LibTorch allocates every tensor with posix_memalign; glibc serves a large one with a new mmap and
  unmaps it when it is freed, so each forward and backward pass computes in freshly mapped pages that
  the kernel must fault in and zero: the extended suite spent 40% of its CPU time in the kernel (69
  million minor page faults, 2026-12-06). reference_py/zoo.py on vgg11 and resnet50 took 34.7 s, 17.9 s
  with these, at the same peak RSS. LibTorch aligns each tensor to 64 bytes wherever it lies.
- Idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE). The suite runs several
  LibTorch processes at once on few cores, and a thread that spins between parallel regions takes the
  core another process needs: four of the example port's runs at once (two per language, two threads
  each) took 46-52 s, 15 s with it.

The suite proves the results bit-identical with these settings; they are the test command's, not the
trainers' (a user's run is one process and keeps the system's defaults).
"""

import ctypes
import ctypes.util
import os

NEVER = 1 << 62  # a trim threshold no heap reaches
SETTINGS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(NEVER), "OMP_WAIT_POLICY": "PASSIVE"}
MALLOPT = {"MALLOC_MMAP_MAX_": -4, "MALLOC_TRIM_THRESHOLD_": -1}  # M_MMAP_MAX, M_TRIM_THRESHOLD in malloc.h


def configure():
    """Apply SETTINGS to the processes this one starts, and malloc's to this one; a variable the user set
    is kept."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    for name, option in MALLOPT.items():
        libc.mallopt(option, ctypes.c_int(min(int(os.environ[name]), 2**31 - 1)))
