"""One thread-count setting for both languages: HYMENOPTERA_THREADS (default: every core).

LibTorch's OpenMP pool reads OMP_NUM_THREADS when the library loads; torch.rb 0.12 has no
set_num_threads, so the Ruby side can only be set through that variable. Python sets both.
"""

import os

from reference_py.errors import UserError

ENV_VAR = "HYMENOPTERA_THREADS"


class SettingError(UserError):
    """HYMENOPTERA_THREADS holds something other than a whole number of at least 1."""


def thread_count():
    value = os.environ.get(ENV_VAR, "")
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"{ENV_VAR}={value!r}: expected a whole number of threads, at least 1; "
                                 f"set it to 1 or {os.cpu_count() or 1}, or unset it to use every core")
    return int(value)


def subprocess_env(env=None):
    """The environment for a child process (Ruby or Python) that must use the same thread count."""
    env = dict(os.environ if env is None else env)
    count = str(thread_count())
    env[ENV_VAR] = count
    env["OMP_NUM_THREADS"] = count
    return env


def configure():
    """Apply the setting to this process's torch; returns the thread count in force."""
    import torch

    count = thread_count()
    torch.set_num_threads(count)
    return torch.get_num_threads()
