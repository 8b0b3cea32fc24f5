"""The machine a benchmark ran on: CPU model, cores, load average (no torch needed)."""

import os
import platform
from pathlib import Path


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average():
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def describe():
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(), "load_average": load_average()}
