"""One thread-count setting for both languages: HYMENOPTERA_THREADS (default: every core).

LibTorch's OpenMP pool reads OMP_NUM_THREADS when the library loads; torch.rb 0.12 has no
set_num_threads, so the Ruby side can only be set through that variable. Python sets both.
"""

import json
import os
import re

from reference_py.errors import UserError

ENV_VAR = "HYMENOPTERA_THREADS"
PER_CORE_MAX = 4  # more LibTorch threads than this per core only slow it down: 10,000 on 2 cores never ended


class SettingError(UserError):
    """HYMENOPTERA_THREADS holds something other than a whole number from 1 to PER_CORE_MAX per core."""


def thread_count():
    cores = os.cpu_count() or 1
    value = os.environ.get(ENV_VAR, "")
    if not value:
        return cores
    most = PER_CORE_MAX * cores
    # ASCII digits alone, as Ruby's twin reads them (str.isdigit also takes '²' and other scripts' digits)
    if not re.fullmatch(r"[1-9][0-9]*", value) or len(value) > len(str(most)) or int(value) > most:
        raise SettingError(f"{ENV_VAR}={json.dumps(value, ensure_ascii=False)}: expected a whole number of threads from 1 to {most} "
                           f"({PER_CORE_MAX} per core); set it to 1 or {cores}, or unset it to use every core")
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
