"""glibc's malloc for the test command's processes: freed memory is kept for the next tensor, never
handed back to the system and mapped afresh.

LibTorch allocates every tensor with posix_memalign; glibc serves a large one with a new mmap and unmaps
it when it is freed, so each forward and backward pass computes in freshly mapped pages that the kernel
must fault in and zero: the extended suite spent 40% of its CPU time in the kernel (69 million minor page
faults, 2026-12-06). With MALLOC_MMAP_MAX_=0 every allocation comes from the heap, and with
MALLOC_TRIM_THRESHOLD_ the heap keeps what is freed. The values computed do not change (LibTorch aligns
each tensor to 64 bytes wherever it lies; the suite proves them bit-identical with these settings), only
the time: reference_py/zoo.py on vgg11 and resnet50 took 34.7 s, 17.9 s with them, at the same peak RSS.

Set for every process pytest starts (the variables are inherited) and for pytest itself (mallopt).
"""

import ctypes
import ctypes.util
import os

NEVER = 1 << 62  # a trim threshold no heap reaches
SETTINGS = {"MALLOC_MMAP_MAX_": 0, "MALLOC_TRIM_THRESHOLD_": NEVER}
MALLOPT = {"MALLOC_MMAP_MAX_": -4, "MALLOC_TRIM_THRESHOLD_": -1}  # M_MMAP_MAX, M_TRIM_THRESHOLD in malloc.h


def configure():
    """Apply SETTINGS to this process and to the processes it starts; a variable the user set is kept."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    for name, value in SETTINGS.items():
        value = int(os.environ.setdefault(name, str(value)))
        libc.mallopt(MALLOPT[name], ctypes.c_int(min(value, 2**31 - 1)))
