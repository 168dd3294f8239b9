"""run/suite/run.py on the standard problem `small` (inputs/suite/): five repetitions of
fsdp and odc, medians with min/max/spread recomputed here from the runs' own JSON
summaries, the figure of merit, the report (run.py's report.md and `minipt-analyze report`
of the suite directory); a deliberate difference between the modes fails the verification
(exit 1, no figure of merit); bad input exits 2 naming the option; medium and large load.

The main run is the README's command as written (`run/suite/run.py small`, its default
launcher, in an environment without Open MPI's OMPI_* variables), so it must work as root
and with more ranks than cores by itself. Needs MINIPT_BIN (about 45 s: ten 4-rank runs).
"""

import json
import os
import statistics
import subprocess
import sys
import tomllib

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

RUN_PY = os.path.join(mr.REPO_ROOT, "run", "suite", "run.py")
SUITE = os.path.join(mr.INPUTS, "suite")


def clean_env():
    """The environment of a new user: none of Open MPI's OMPI_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OMPI_")}


def suite(args, timeout=300):
    """run.py with its default launcher (unless MINIPT_MPIEXEC names another MPI's)."""
    if "--launcher" not in args and "MINIPT_MPIEXEC" in os.environ:
        args = args + ["--launcher", " ".join(mr.mpiexec()) + " -n {ranks}"]
    return subprocess.run([sys.executable, RUN_PY] + args + ["--minipt", mr.minipt_bin()],
                          capture_output=True, text=True, timeout=timeout, env=clean_env())


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """`run/suite/run.py small` exactly as the README writes it, from a fresh directory
    (its default --out, out/suite/small, lands there), with no OMPI_* variables."""
    cwd = tmp_path_factory.mktemp("suite")
    cmd = [RUN_PY, "small"]
    if not any(os.access(os.path.join(mr.REPO_ROOT, "build", b, "src", "minipt"), os.X_OK)
               for b in ("cuda", "cpu")):
        cmd += ["--minipt", mr.minipt_bin()]  # a build outside the tree: the default finds none
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=clean_env(), cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / "out" / "suite" / "small"
    # It said what it did to launch here (as root; 4 ranks on fewer cores).
    if os.geteuid() == 0:
        assert "launch: running as root: OMPI_ALLOW_RUN_AS_ROOT=1" in proc.stdout
    if (os.cpu_count() or 1) < 4:
        assert "launch: 4 ranks on" in proc.stdout and "oversubscribing" in proc.stdout
    with open(out / "suite.json") as f:
        return out, json.load(f), proc.stdout


def test_small_medians_spread_and_figure_of_merit(small):
    out, doc, stdout = small
    with open(os.path.join(SUITE, "suite.toml"), "rb") as f:
        rules = tomllib.load(f)["problem"]["small"]
    assert doc["repetitions"] == 5 and doc["verification"] == "PASSED"
    medians = {}
    for mode in ("fsdp", "odc"):
        values, utils = [], []
        for rep in range(1, 6):
            with open(out / "runs" / ("%s-%d.json" % (mode, rep))) as f:
                j = json.load(f)
            assert j["mode"] == mode and j["world_size"] == 4
            values.append(j["summary"]["tokens_per_s_per_rank"])
            utils.append(j["summary"]["utilization"])
        m = doc["modes"][mode]["tokens_per_s_per_rank"]
        med = statistics.median(values)
        assert m["median"] == pytest.approx(med) and m["min"] == min(values)
        assert m["max"] == max(values)
        assert m["spread"] == pytest.approx((max(values) - min(values)) / med)
        assert doc["modes"][mode]["stable"] == (m["spread"] <= rules["spread_limit"])
        assert doc["modes"][mode]["utilization"]["median"] == pytest.approx(statistics.median(utils))
        medians[mode] = med
    fom = doc["figure_of_merit"]
    assert fom["value"] == pytest.approx(max(medians.values()))
    assert fom["mode"] == max(medians, key=medians.get)
    assert fom["odc_over_fsdp"] == pytest.approx(medians["odc"] / medians["fsdp"])
    # odc with LB-Mini beats fsdp with LB-Micro on this long-tailed workload.
    assert fom["odc_over_fsdp"] > 1.05
    assert "SUITE small figure_of_merit=%.1f" % fom["value"] in stdout
    report = (out / "report.md").read_text()
    assert "Figure of merit: %.1f" % fom["value"] in report


def test_analyze_report_reads_a_suite_directory(small):
    out, doc, _ = small
    target = out / "analysis.md"
    env = dict(os.environ, PYTHONPATH=os.path.join(mr.REPO_ROOT, "analysis"))
    proc = subprocess.run([sys.executable, "-m", "minipt_analysis", "report", str(out), "-o",
                           str(target)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert "Figure of merit: %.1f" % doc["figure_of_merit"]["value"] in text
    assert "fsdp-1" in text and "odc-1" in text


def test_modes_that_disagree_fail_with_no_figure_of_merit(tmp_path):
    # A different learning rate for odc only: the final loss and parameters differ.
    proc = suite(["small", "--out", str(tmp_path), "--set-odc", "optim.lr=0.01"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SUITE small VERIFICATION FAILED" in proc.stdout
    doc = json.loads((tmp_path / "suite.json").read_text())
    assert doc["verification"] == "FAILED" and doc["figure_of_merit"] is None
    assert "differs" in doc["failure"]
    assert len(doc["runs"]) == 2  # stopped after the first pair
    assert "VERIFICATION FAILED" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("args,key", [(["small", "--repetitions", "3"], "--repetitions"),
                                      (["huge"], "problem"),
                                      (["small", "--launcher", "no-such-launcher"], "--launcher")])
def test_bad_input_exits_2_naming_it(tmp_path, args, key):
    proc = suite(args + ["--out", str(tmp_path / "o")])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("error:") == 1 and key in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["small", "medium", "large"])
def test_every_problem_loads(name):
    with open(os.path.join(SUITE, "suite.toml"), "rb") as f:
        p = tomllib.load(f)["problem"][name]
    proc = mr.run_minipt(["plan", "--config", os.path.join(SUITE, p["config"]), "--ranks",
                          str(p["ranks"])])
    assert proc.returncode == 0, proc.stderr
    assert mr.parse_bound(proc.stdout)["ranks"] == p["ranks"]
