"""The parity suite's command-line options. A plugin of the root conftest.py: pytest reads options only
from conftests it loads before parsing the command line, and it loads parity/conftest.py later when it
runs from the repository root (the test command's `pytest`)."""

import os


def pytest_addoption(parser):
    group = parser.getgroup("parity", "comparing replay runs made elsewhere")
    group.addoption("--python-run", default=os.environ.get("PARITY_PYTHON_RUN"), metavar="DIR",
                    help="a Python replay run directory (reference_py/replay.py --out DIR) to compare instead of "
                         "running the Python replay here")
    group.addoption("--ruby-run", metavar="DIR",
                    help="a Ruby replay run directory (ruby_port/bin/replay --out DIR) to compare instead of "
                         "running the Ruby replay here")
