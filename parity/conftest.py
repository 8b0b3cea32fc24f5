"""Session set-up for the parity suite.

Builds the fixtures when missing or stale, runs the Python and the Ruby replay once each, for real,
side by side at one thread setting, and collects every comparison for the report written at the end.

Runs made elsewhere (another machine, another LibTorch, another thread count):
  pytest parity --python-run DIR --ruby-run DIR   compare these replay run directories instead of
                                                   running the replays here (either option alone: the
                                                   other side runs here)
When the two runs' stacks differ (LibTorch file or version, thread count), the Python replay is run
once more here on the Ruby run's thread count (the floor run) and every quantity may differ from the
reference by FLOOR_MULTIPLE times what the reference's own two runs differ by (parity/tolerances.py).

Paths, strategies and the environment variables that change them: parity/settings.py.
"""

import functools
import hashlib
import json

import pytest

from parity import cpu_log, early, report
from parity.settings import FIXTURES, FIXTURES_CHECKED, PYTHON_FLOOR_RUNS, REPORT, RUNS, STRATEGIES
from parity.sides import close_session_servers, python, ruby, run_together, start_served

# parity.runs (and with it torch) is imported by the fixtures that read runs: a session that --python-run or
# --ruby-run refuses at the start (parity/options.py's pytest_configure, after this file loads) never loads LibTorch.

SIDES = {}  # each side's stack, as its own run recorded it
COMPARISONS = []
NOTES = []  # sentences for the report, e.g. how the free-running data orders differ
FLOOR_OF = "floor_of.json"  # beside floor_commands' runs: the reference, thread count and replay they were made for


@pytest.fixture(scope="session")
def sides():
    """Each side's runtime description, added once its replay has run."""
    return SIDES


@pytest.fixture(scope="session")
def recorder():
    return COMPARISONS


@pytest.fixture(scope="session")
def report_notes():
    return NOTES


@functools.cache
def fixtures_ready():
    """fixtures/, built or rebuilt first when missing or stale (checked once per session; in a child session not
    again while their manifest is the one its parent checked, FIXTURES_CHECKED: each check hashes every file and
    loads the weights, 0.7 CPU-s)."""
    if FIXTURES_CHECKED is not None and FIXTURES_CHECKED == manifest_sha256():
        return FIXTURES
    from reference_py.export_fixtures import ensure_fixtures

    ensure_fixtures(FIXTURES)
    return FIXTURES


def manifest_sha256():
    """The sha256 of fixtures/manifest.json, or None when there is none."""
    manifest = FIXTURES / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None


@pytest.fixture(scope="session")
def fixtures_dir():
    return fixtures_ready()


def side_info(run):
    """A side's stack as its run recorded it (versions, LibTorch file, threads)."""
    return {k: v for k, v in run.info.items()
            if k not in ("strategies", "weights", "fixtures_manifest_sha256") and v is not None}


def floor_threads(python_info, ruby_info):
    """The thread count of the floor run: the Ruby run's, or another than the reference's if those agree."""
    if ruby_info.get("threads") != python_info.get("threads"):
        return ruby_info["threads"]
    return 2 if python_info.get("threads") == 1 else 1


@pytest.fixture(scope="session")
def replay_runs(fixtures_dir, request):
    """Both replays (run here side by side, or given), and across stacks the reference's floor run."""
    from parity.runs import Replays, Run

    given = {"python": request.config.getoption("python_run"), "ruby": request.config.getoption("ruby_run")}
    replay_args = ["--fixtures", fixtures_dir, "--strategy", *STRATEGIES]
    commands = []
    # the collected tests read only the resynchronised replays (resync_runs): the port's plain replay would serve only
    # for its stack, which its resynchronised one records as well, so that one is made in its place
    resync_alone = (not given["ruby"] and given["python"] and Run(given["python"]).has_steps()
                    and not any("replay_runs" in item.fixturenames and "resync_runs" not in item.fixturenames
                                for item in request.session.items))
    if resync_alone:
        commands.append(ruby("replay", *replay_args, "--resync", given["python"], "--record-steps",
                             "--out", RUNS / "ruby_resync"))
    elif not given["ruby"]:
        commands.append(ruby("replay", *replay_args, "--out", RUNS / "ruby"))
    if not given["python"]:
        # a Ruby run made elsewhere may be of another stack: then the steps locate divergences
        record_steps = ["--record-steps"] if given["ruby"] else []
        commands.append(python("replay.py", *replay_args, *record_steps, "--out", RUNS / "python"))
    # forked by the session's servers (parity/sides.py's session_server), which the session starts anyway: each replay
    # as a process of its own paid its interpreter's and LibTorch's start and teardown
    start_served(*commands).wait()
    python_run = Run(given["python"] or RUNS / "python")
    ruby_run = Run(given["ruby"] or RUNS / ("ruby_resync" if resync_alone else "ruby"))
    SIDES.update(python=side_info(python_run), ruby=side_info(ruby_run))
    fixtures_used = {side: run.info.get("fixtures_manifest_sha256") for side, run in (("python", python_run), ("ruby", ruby_run))}
    assert fixtures_used["python"] == fixtures_used["ruby"], (
        f"the two replays read different fixtures (manifest sha256 python {fixtures_used['python']}, ruby "
        f"{fixtures_used['ruby']}): nothing they computed is comparable; rerun both on the same fixtures/")
    replays = Replays(python_run, ruby_run)
    if not replays.same_stack:
        local = manifest_sha256()
        assert local == fixtures_used["python"], (
            f"the runs' stacks differ, and the floor run needs the fixtures they used (manifest sha256 "
            f"{fixtures_used['python']}), but {fixtures_dir} holds others ({local}): copy the runs' fixtures/ here")
        run_across_stacks(replays, replay_args, ruby_resync=ruby_run if resync_alone else None)
    return replays


@pytest.fixture(scope="session")
def resync_runs(replay_runs):
    """The replays, of which the tests that take this fixture read the resynchronised ones alone (replay_runs.resync);
    when no collected test reads the others, the port's plain replay is not made."""
    return replay_runs


def floor_commands(python_run, floor, replay_args, out, floor_run=None):
    """The reference's own runs on the floor run's stack (floor threads), into out: the floor run, and where the
    reference recorded its steps, its replay resynchronised on them. `floor_run`: a replay already made on that
    stack, of these fixtures and at least these strategies, linked into a new `out` as the floor run."""
    out.mkdir(parents=True, exist_ok=True)
    commands = []
    if floor_run is None:
        commands.append(python("replay.py", *replay_args, "--out", out / "python_floor", thread_count=floor))
    else:
        assert floor_run.info["threads"] == floor, f"{floor_run.path} ran at {floor_run.info['threads']} threads, not {floor}"
        (out / "python_floor").symlink_to(floor_run.path.absolute(), target_is_directory=True)
    if python_run.has_steps():
        commands.append(python("replay.py", *replay_args, "--resync", python_run.path, "--record-steps",
                               "--out", out / "python_floor_resync", thread_count=floor))
    (out / FLOOR_OF).write_text(json.dumps({"python_run": str(python_run.path), "threads": floor,
                                            "replay_args": [str(a) for a in replay_args]}))
    return commands


def given_floor_runs(python_run, floor, replay_args):
    """PYTHON_FLOOR_RUNS when it holds floor_commands' runs for this reference, thread count and replay; else fails."""
    made = json.loads((PYTHON_FLOOR_RUNS / FLOOR_OF).read_text())
    wanted = {"python_run": str(python_run.path), "threads": floor, "replay_args": [str(a) for a in replay_args]}
    assert made == wanted, (f"PARITY_PYTHON_FLOOR_RUNS={PYTHON_FLOOR_RUNS} holds the floor runs of {made}, "
                            f"this session needs {wanted}: unset it and the floor runs are made here")
    return PYTHON_FLOOR_RUNS


def run_across_stacks(replays, replay_args, ruby_resync=None):
    """The floor run; and where the reference recorded its steps, both resynchronised replays: the
    port's (at the Ruby run's thread count; `ruby_resync` when made already) and the reference's own on the floor
    run's stack. The reference's runs come from PARITY_PYTHON_FLOOR_RUNS when set (the fault-injection children share
    their parent's)."""
    from parity.runs import Replays, Run

    floor = floor_threads(replays.python.info, replays.ruby.info)
    if PYTHON_FLOOR_RUNS:
        floor_out, commands = given_floor_runs(replays.python, floor, replay_args), []
    else:
        floor_out, commands = RUNS, floor_commands(replays.python, floor, replay_args, RUNS)
    resync = replays.python.has_steps()
    if resync and ruby_resync is None:
        resync_args = [*replay_args, "--resync", replays.python.path, "--record-steps"]
        commands.append(ruby("replay", *resync_args, "--out", RUNS / "ruby_resync", thread_count=replays.ruby.info["threads"]))
    run_together(*commands)
    replays.floor = Run(floor_out / "python_floor")
    SIDES["python (floor run)"] = side_info(replays.floor)
    if resync:
        replays.resync = Replays(replays.python, ruby_resync or Run(RUNS / "ruby_resync"), Run(floor_out / "python_floor_resync"))
        SIDES["ruby (resynchronised)"] = side_info(replays.resync.ruby)


@pytest.fixture(scope="session")
def python_run(replay_runs):
    return replay_runs.python


@pytest.fixture(scope="session")
def bit_identical_expected(replay_runs):
    return replay_runs.same_stack


def pytest_generate_tests(metafunc):
    if "strategy" in metafunc.fixturenames:
        metafunc.parametrize("strategy", STRATEGIES)


def pytest_configure(config):
    if cpu_log.LOG:
        cpu_log.install()
        config.pluginmanager.register(cpu_log.Plugin(), "parity_cpu_log")


def pytest_collection_finish(session):
    if not session.config.option.collectonly:  # --collect-only runs no test: its runs would be started to be stopped
        early.start_used(session)


def pytest_sessionfinish(session):
    early.stop_unread()
    close_session_servers()
    if REPORT and (COMPARISONS or SIDES):
        report.write(REPORT, COMPARISONS, SIDES, RUNS, notes=NOTES)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("parity environment")
    for name, info in SIDES.items():
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "side"))
    if COMPARISONS:
        failed = sum(not c.passed for c in COMPARISONS)
        terminalreporter.write_line(
            f"{len(COMPARISONS)} comparisons, {failed} outside tolerance" + (f"; report: {REPORT / 'index.md'}" if REPORT else ""))
