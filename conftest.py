"""pytest's set-up for the whole repository: the parity suite's command-line options (parity/options.py)."""

pytest_plugins = ["parity.options"]
