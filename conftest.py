"""pytest's set-up for the whole repository: the parity suite's command-line options (parity/options.py),
and glibc's malloc settings for every process the tests start (parity/allocator.py)."""

from parity import allocator

pytest_plugins = ["parity.options"]


def pytest_configure(config):
    allocator.configure()
