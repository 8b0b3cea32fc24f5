"""pytest's set-up for the whole repository: the parity suite's command-line options (parity/options.py),
glibc's malloc settings for every process the tests start (parity/allocator.py), and the session's
temporary directory removed when every test passed."""

import shutil

import pytest

from parity import allocator

pytest_plugins = ["parity.options"]


def pytest_configure(config):
    allocator.configure()


@pytest.fixture(scope="session", autouse=True)
def temporary_directory_kept_only_for_failures(request, tmp_path_factory):
    """A whole session writes several GB of runs, copies of the repository and the zoo's weights under its
    temporary directory, and pytest keeps the last three sessions' directories: a passing session's is
    removed as it ends (torn down last, after every other fixture); a failing one's stays to be read."""
    basetemp = tmp_path_factory.getbasetemp()
    yield
    if request.session.testsfailed == 0 and not request.session.shouldfail:
        shutil.rmtree(basetemp, ignore_errors=True)
