"""pytest's set-up for the whole repository: the settings that make the tests' processes faster
(parity/process_settings.py), applied before any test module loads LibTorch, and the parity suite's
command-line options (parity/options.py)."""

from parity import process_settings

process_settings.configure()

pytest_plugins = ["parity.options"]
