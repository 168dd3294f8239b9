"""run/demo.sh as the README runs it, in a new user's environment (no OMPI_* variables):
it launches by itself as root and on fewer cores than its 4 ranks (saying so), shows the
build's progress instead of hiding it, and ends with the result line and the pictures.
Runs are shortened to 2 steps (extra key=value arguments); about 40 s.
"""

import os
import re
import subprocess

import pytest

import minipt_runner as mr

DEMO = os.path.join(mr.REPO_ROOT, "run", "demo.sh")


@pytest.mark.skipif(not os.path.isdir(os.path.join(mr.REPO_ROOT, "build", "cpu")),
                    reason="run/demo.sh builds build/cpu of this tree; it is not configured here")
def test_demo_runs_as_written_and_shows_build_progress(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_")}
    # deps.sh inside the demo keeps this checkout's analysis package (not another tree's).
    env["PYTHONPATH"] = os.path.join(mr.REPO_ROOT, "analysis")
    env["MINIPT_DEMO_OUT"] = str(tmp_path / "demo")
    proc = subprocess.run([DEMO, "run.steps=2"], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "== building minipt" in out
    # Ninja's progress ([done/total] lines) or its "no work to do" when up to date.
    assert re.search(r"^\[\d+/\d+\] |ninja: no work to do", out, re.M), out[:3000]
    if os.geteuid() == 0:
        assert "launch: running as root" in out
    assert re.search(r"^fsdp\+micro [\d,]+ tokens/s \| odc\+mini [\d,]+ tokens/s \| speedup", out,
                     re.M), out[-3000:]
    for f in ("fsdp.h5", "odc.h5", "timeline.png", "utilization-odc.png"):
        assert (tmp_path / "demo" / f).is_file(), f
