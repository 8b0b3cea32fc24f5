"""The parity suite's settings: where it reads and writes, and which strategies it compares.

Environment (the fault-injection tests run this suite against a broken copy of the port with these):
  PARITY_RUBY_PORT   a copy of ruby_port/ to test instead of ruby_port/
  PARITY_RUNS        where the replays and the trainers write (default runs/parity)
  PARITY_STRATEGIES  comma-separated strategies to run and compare (default: ALL_STRATEGIES)
  PARITY_REPORT      where the report goes (default parity/report; "none": no report, as for the fault
                     tests' child suites, whose verdict is their output)
  PARITY_PYTHON_RUN  the default of --python-run (parity/options.py)
  PARITY_PYTHON_FLOOR_RUNS  across stacks: a folder where conftest.floor_commands made the reference's floor
                     runs for this --python-run (the fault-injection children share their parent's)
  PARITY_PYTHON_FREE_RUNS  a folder where test_free_running.free_run_commands trained the Python side (its
                     python/ and data/), taken instead of training it again (the data paths' children)
  PARITY_PYTHON_CONFIG  a file holding `python reference_py/train.py --print-config`'s output, taken instead of running
                     it again (test_options.py; the fault-injection children, whose faults are in the port alone)
  PARITY_PYTHON_PREPROCESSED  a folder where test_preprocessing.python_standin made the Python side's stand-in bundle
                     (standin.json, standin_python), taken instead of making it again (the fault-injection children)
  PARITY_FIXTURES_CHECKED  the sha256 of fixtures/manifest.json when a parent session found the fixtures up to date
                     (the fault-injection children): while the manifest hashes to it, they are not checked again
  PARITY_RUBY_SERVER the socket of a Ruby fork server (parity/fork_server.rb) that runs the port's entry points
                     (parity/sides.py's ruby commands) for this session: a fault-injection child's parent's
  PARITY_CPU_LOG     a file: each process the suite starts and each test, with its CPU time, as JSON lines
                     (parity/cpu_log.py)
Tolerances are in parity/tolerances.py.
"""

import os
from pathlib import Path

from reference_py import ROOT
from reference_py.strategies import RESNET18_STRATEGIES

RUBY_PORT = Path(os.environ.get("PARITY_RUBY_PORT") or ROOT / "ruby_port")
FIXTURES = ROOT / "fixtures"
RUNS = Path(os.environ.get("PARITY_RUNS") or ROOT / "runs" / "parity")
PYTHON_FLOOR_RUNS = Path(os.environ["PARITY_PYTHON_FLOOR_RUNS"]) if os.environ.get("PARITY_PYTHON_FLOOR_RUNS") else None
PYTHON_FREE_RUNS = Path(os.environ["PARITY_PYTHON_FREE_RUNS"]) if os.environ.get("PARITY_PYTHON_FREE_RUNS") else None
PYTHON_CONFIG = Path(os.environ["PARITY_PYTHON_CONFIG"]) if os.environ.get("PARITY_PYTHON_CONFIG") else None
PYTHON_PREPROCESSED = (Path(os.environ["PARITY_PYTHON_PREPROCESSED"]) if os.environ.get("PARITY_PYTHON_PREPROCESSED")
                       else None)
FIXTURES_CHECKED = os.environ.get("PARITY_FIXTURES_CHECKED")
RUBY_SERVER = os.environ.get("PARITY_RUBY_SERVER")
REPORT = (None if os.environ.get("PARITY_REPORT") == "none"
          else Path(os.environ.get("PARITY_REPORT") or ROOT / "parity" / "report"))

# What the replay and the free-running trainers are compared on: the strategies the reference's replay
# and fixtures cover (the VGG-16 extractor has a module of its own, test_vgg16_extractor.py).
ALL_STRATEGIES = list(RESNET18_STRATEGIES)
STRATEGIES = [s for s in os.environ.get("PARITY_STRATEGIES", "").split(",") if s] or ALL_STRATEGIES
