"""run/jube/minipt.xml under Debian's JUBE (issue 30 item 4): `jube run --tag ci` on the
small problem (every run 2 steps), then `jube result` shows the figure of merit, the
odc/fsdp ratio, the revision and one VERIFICATION PASSED per run (10), matching what
run.py wrote in suite.json. Skips, saying why, only where `jube` is not installed
(run/deps.sh installs it as root with apt-get). About 30 s.
"""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest

import minipt_runner as mr

JUBE_XML = os.path.join(mr.REPO_ROOT, "run", "jube", "minipt.xml")

pytestmark = [
    pytest.mark.skipif(shutil.which("jube") is None,
                       reason="jube is not installed (Debian: apt-get install jube; run/deps.sh "
                              "does it as root)"),
    pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")]


def test_jube_run_and_result_show_the_figure_of_merit(tmp_path):
    build = os.path.join(mr.REPO_ROOT, "build", "cpu", "src", "minipt")
    if not (os.path.exists(build) and os.path.samefile(build, mr.minipt_bin())):
        pytest.skip("the JUBE script builds and runs build/cpu/src/minipt of this tree; "
                    "MINIPT_BIN is another build")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_")}
    env["MINIPT_SYSTEM"] = "ci-test"
    run = subprocess.run(["jube", "run", JUBE_XML, "--tag", "ci", "-o", str(tmp_path / "jr")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = subprocess.run(["jube", "result", "-a", str(tmp_path / "jr")], capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [l for l in res.stdout.splitlines() if l.startswith("|")]
    assert len(lines) == 3, res.stdout  # header, rule, one row
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    row = dict(zip(header, [c.strip() for c in lines[2].strip("|").split("|")]))
    suite_json = glob.glob(str(tmp_path / "jr" / "*" / "*_execute" / "work" / "suite" /
                               "suite.json"))
    assert len(suite_json) == 1, res.stdout
    doc = json.loads(open(suite_json[0]).read())
    fom = doc["figure_of_merit"]
    assert row["system"] == "ci-test" and row["problem"] == "small" and row["ranks"] == "4"
    assert float(row["figure_of_merit (tokens/s/GPU)"]) == pytest.approx(fom["value"], abs=0.06)
    assert float(row["odc_over_fsdp"]) == pytest.approx(fom["odc_over_fsdp"], abs=6e-4)
    assert row["stable"] == str(doc["stable"]).lower()
    assert row["VERIFICATION PASSED"] == "10" and row["exit_code"] == "0"
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", row["revision"]), row
    assert row["revision"] == doc["runs"][0]["git_revision"]
