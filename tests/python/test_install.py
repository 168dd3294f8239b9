"""`cmake --install BUILD --prefix P` (cmake/install.cmake): bin/minipt,
share/minipt/{inputs,slurm,suite,lib}, lib/cmake/minipt (find_package(minipt) gives the
imported target minipt::minipt); the installed sbatch script, run with its defaults (no
MINIPT, no CONFIG) under the stand-in srun of run/slurm/README.md, runs the installed
binary on the installed demo input; the analysis package installs with pip from the
source tree.

The build tree is the one holding MINIPT_BIN (BUILD/src/minipt). About 40 s.
"""

import os
import shutil
import subprocess
import sys

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None or shutil.which("cmake") is None,
                                reason=mr.skip_reason() or "cmake not found")

FAKE_SRUN = """#!/bin/bash
n="$SLURM_NTASKS"
while [[ "$1" == --* ]]; do case "$1" in --ntasks=*) n="${1#--ntasks=}" ;; esac; shift; done
if [[ "$1" == bash ]]; then
  for ((i = 0; i < n; i++)); do SLURM_PROCID=$i SLURM_LOCALID=$i "$@"; done
else
  exec mpirun -n "$n" --oversubscribe "$@"
fi
"""


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    build = os.path.dirname(os.path.dirname(os.path.realpath(mr.minipt_bin())))
    if not os.path.isfile(os.path.join(build, "cmake_install.cmake")):
        pytest.skip("%s is not a CMake build tree" % build)
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", build, "--prefix", str(p)], check=True,
                   capture_output=True, timeout=120)
    return p


def test_layout(prefix):
    assert os.access(prefix / "bin" / "minipt", os.X_OK)
    assert (prefix / "share/minipt/inputs/experiments/demo.toml").is_file()
    assert (prefix / "share/minipt/inputs/suite/suite.toml").is_file()
    assert os.access(prefix / "share/minipt/slurm/minipt.sbatch", os.X_OK)
    assert os.access(prefix / "share/minipt/suite/run.py", os.X_OK)
    assert os.access(prefix / "share/minipt/lib/result", os.X_OK)
    assert (prefix / "lib/cmake/minipt/minipt-targets.cmake").is_file()
    text = (prefix / "share/minipt/slurm/minipt.sbatch").read_text()
    assert 'MINIPT_PREFIX="${MINIPT_PREFIX:-%s}"' % prefix in text


def test_find_package_gives_the_executable(prefix, tmp_path):
    src = tmp_path / "user"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(user LANGUAGES NONE)\n"
        "find_package(minipt 0.1 REQUIRED)\nget_target_property(exe minipt::minipt LOCATION)\n"
        'message(STATUS "minipt: ${exe} data: ${minipt_DATA_DIR}")\n')
    proc = subprocess.run(["cmake", "-S", str(src), "-B", str(tmp_path / "b"),
                           "-DCMAKE_PREFIX_PATH=%s" % prefix], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "minipt: %s/bin/minipt data: %s/share/minipt" % (prefix, prefix) in proc.stdout


def test_installed_sbatch_defaults_run_the_installed_binary(prefix, tmp_path):
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "srun").write_text(FAKE_SRUN)
    (fakebin / "srun").chmod(0o755)
    submit = tmp_path / "submit"  # no build tree, no inputs: only the prefix can serve
    submit.mkdir()
    env = mr.mpi_env({"PATH": "%s:%s" % (fakebin, os.environ["PATH"]),
                      "SLURM_SUBMIT_DIR": str(submit), "SLURM_JOB_ID": "77",
                      "SLURM_NTASKS": "2", "SLURM_CPUS_PER_TASK": "1", "SLURM_JOB_NUM_NODES": "1",
                      "SLURM_JOB_NODELIST": "localhost",
                      "SETS": "model.layers=2 run.steps=2 workload.minibatch_size=4"})
    env.pop("MINIPT", None)
    env.pop("CONFIG", None)
    proc = subprocess.run(["bash", str(prefix / "share/minipt/slurm/minipt.sbatch")], cwd=submit,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "minipt: %s/bin/minipt" % prefix in proc.stdout
    assert "config: %s/share/minipt/inputs/experiments/demo.toml" % prefix in proc.stdout
    assert proc.stdout.count("VERIFICATION PASSED") == 2
    assert len([l for l in proc.stdout.splitlines() if l.startswith("PERFORMANCE ")]) == 4
    for mode in ("fsdp", "odc"):
        assert (submit / ("minipt-77-%s.h5" % mode)).is_file()


def test_analysis_installs_with_pip(tmp_path):
    # Offline (no build isolation) a setuptools build needs the wheel package, or a
    # setuptools new enough (>= 70.1) to build wheels itself.
    probe = subprocess.run([sys.executable, "-c", "import setuptools, sys; "
                            "v = tuple(int(x) for x in setuptools.__version__.split('.')[:2]); "
                            "import importlib.util as u; "
                            "sys.exit(0 if v >= (70, 1) or u.find_spec('wheel') else 1)"])
    if probe.returncode != 0:
        pytest.skip("an offline pip build needs setuptools >= 70.1 or the wheel package "
                    "(python3-wheel), neither is installed")
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--target", str(target),
                           os.path.join(mr.REPO_ROOT, "analysis")], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not installed")
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", "import minipt_analysis; print(minipt_analysis.__file__)"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert out.stdout.startswith(str(target))
    assert os.access(target / "bin" / "minipt-analyze", os.X_OK)
