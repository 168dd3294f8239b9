"""Shared pytest fixtures.

The analysis package is imported from the source tree (analysis/), so the tests run
whether or not `pip install -e analysis` was done.

Environment: MINIPT_BIN names the minipt executable (fixtures that need it skip when it
is unset or missing); MINIPT_MPIEXEC the MPI launcher (default mpirun) and
MINIPT_MPIEXEC_FLAGS its extra flags (default --oversubscribe).
"""

import os
import shlex
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANALYSIS_DIR = os.path.join(REPO_ROOT, "analysis")
if ANALYSIS_DIR not in sys.path:
    sys.path.insert(0, ANALYSIS_DIR)


def minipt_bin():
    """Path of the minipt executable from MINIPT_BIN, or None when unset or missing."""
    path = os.environ.get("MINIPT_BIN")
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def run_minipt(ranks, args, timeout=300):
    """Runs `mpiexec -n RANKS minipt ARGS`; fails the test with minipt's output on error."""
    binary = minipt_bin()
    if binary is None:
        pytest.skip("MINIPT_BIN unset or missing")
    launcher = shlex.split(os.environ.get("MINIPT_MPIEXEC", "mpirun"))
    if shutil.which(launcher[0]) is None:
        pytest.fail(f"MPI launcher {launcher[0]!r} not found (set MINIPT_MPIEXEC)")
    flags = shlex.split(os.environ.get("MINIPT_MPIEXEC_FLAGS", "--oversubscribe"))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = [*launcher, "-n", str(ranks), *flags, binary, *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                            cwd=REPO_ROOT)
    if result.returncode != 0:
        pytest.fail(f"{shlex.join(command)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


# A small emulated run: the tiny model, short lengths, a few steps (well under a second).
SMALL_RUN = ["--config", "inputs/models/tiny.toml", "--set", "run.steps=4",
             "--set", "run.warmup_steps=1", "--set", "workload.minibatch_size=8",
             "--set", "workload.mean=256", "--set", "workload.max=1024",
             "--set", "workload.name=pytest-small", "--quiet"]


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory):
    """Timelines written by minipt at 2 ranks: {"fsdp": path, "odc": path, ...}. The
    fsdp and odc runs share workload, model and seed (comparable); "odc_one_measured"
    has the most warm-up steps allowed (run.steps - 1), so one step is measured."""
    if minipt_bin() is None:
        pytest.skip("MINIPT_BIN unset or missing: no real minipt runs")
    out = tmp_path_factory.mktemp("real_runs")
    runs = {"fsdp": ["run.mode=fsdp", "balance.scheme=micro"],
            "odc": ["run.mode=odc", "balance.scheme=mini"],
            "odc_one_measured": ["run.mode=odc", "balance.scheme=mini", "run.steps=2",
                                 "run.warmup_steps=1"]}
    paths = {}
    for name, settings in runs.items():
        path = str(out / f"{name}.h5")
        sets = [arg for s in settings for arg in ("--set", s)]
        run_minipt(2, ["run", *SMALL_RUN, *sets, "--out", path])
        paths[name] = path
    return paths


@pytest.fixture
def analysis_env():
    """Environment for running `python -m minipt_analysis` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ANALYSIS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return env
