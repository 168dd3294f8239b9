"""run/reframe/minipt_check.py under ReFrame (issue 30 item 5), for real: the README's
command (`reframe -C run/reframe/config.py -c run/reframe/minipt_check.py -r
--performance-report`) on the small problem, every run 2 steps (-S steps=2) and
require_stable off (2 shared cores are too noisy for the 10 % spread limit at 2 steps).
Checks that the test passed sanity (10 x VERIFICATION PASSED, a figure of merit) and that
both performance variables were judged against the local partition's references and
equal what run.py wrote. Skips, saying why, only where reframe-hpc is not installed
(run/deps.sh installs it with pip). About 30 s.
"""

import json
import os
import shutil
import subprocess

import pytest

import minipt_runner as mr

RFM_DIR = os.path.join(mr.REPO_ROOT, "run", "reframe")

pytestmark = [
    pytest.mark.skipif(shutil.which("reframe") is None,
                       reason="reframe is not installed (pip install reframe-hpc; run/deps.sh "
                              "does it)"),
    pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")]


def test_reframe_check_runs_and_reports_performance(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_")}
    env["RFM_REPORT_FILE"] = str(tmp_path / "report.json")
    proc = subprocess.run(
        ["reframe", "-C", os.path.join(RFM_DIR, "config.py"), "-c",
         os.path.join(RFM_DIR, "minipt_check.py"), "-r", "--performance-report",
         "-S", "steps=2", "-S", "require_stable=false", "-S", "minipt=" + mr.minipt_bin(),
         "--prefix", str(tmp_path / "rfm"), "--report-file", str(tmp_path / "report.json")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "PERFORMANCE REPORT" in proc.stdout and "figure_of_merit" in proc.stdout
    case = json.loads((tmp_path / "report.json").read_text())["runs"][0]["testcases"][0]
    assert case["result"] == "pass" and case["system"] == "minipt-local"
    assert {"minipt", "benchmark", "small"} <= set(case["tags"])
    perf = case["perfvalues"]
    fom = perf["minipt-local:cpu:figure_of_merit"]
    ratio = perf["minipt-local:cpu:odc_over_fsdp"]
    assert fom[4] == "tokens/s/GPU" and fom[5] == "pass" and fom[1] > 0  # judged: a reference
    assert ratio[4] == "x" and ratio[5] == "pass"
    # keep_files: the suite's suite.json is copied into the output directory.
    suite = json.loads(open(os.path.join(case["outputdir"], "suite.json")).read())
    assert fom[0] == pytest.approx(suite["figure_of_merit"]["value"], abs=0.06)
    assert ratio[0] == pytest.approx(suite["figure_of_merit"]["odc_over_fsdp"], abs=6e-5)
