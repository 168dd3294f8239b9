"""Figures a run cannot measure, and compute.tuning on the CPU build (issue 27).

* run.trace = false: no events, so compute-busy time is unknown: utilization and idle are
  ``n/a`` on the console, NaN in /summary, null in the JSON, and minipt-analyze neither
  shows 0 nor calls the file inconsistent.
* compute.tuning names a file: a missing, truncated or damaged tuning file is exit 2
  naming compute.tuning and the file, before any rank starts work.
* MFU is taken against the peak the report prints, with its source.
"""
import json
import math
import os
import subprocess

import h5py
import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=str(mr.skip_reason()))

RUN = ["run", "--config", os.path.join(mr.INPUTS, "experiments", "demo.toml"), "--set", "run.steps=2",
       "--set", "model.layers=1", "--set", "workload.minibatch_size=2"]


def test_untraced_run_reports_utilization_as_unknown(tmp_path):
    out = tmp_path / "u.h5"
    p = mr.run_minipt(RUN + ["--set", "run.trace=false", "--out", str(out)], ranks=2, check=True)
    perf = next(l for l in p.stdout.splitlines() if l.startswith("PERFORMANCE"))
    assert "utilization=n/a" in perf and "idle_fraction=n/a" in perf, perf
    assert "util   n/a" in p.stdout, p.stdout
    with h5py.File(out) as f:
        assert math.isnan(float(f["summary"].attrs["utilization"]))
        assert math.isnan(float(f["summary"].attrs["idle_fraction"]))
    j = json.loads((tmp_path / "u.json").read_text())
    assert j["summary"]["utilization"] is None and j["summary"]["idle_fraction"] is None
    assert j["kernel_tuning"] == "none"  # the emulated backend has nothing to tune
    analyze = subprocess.run(["minipt-analyze", "validate", str(out)], capture_output=True, text=True)
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr
    summary = subprocess.run(["minipt-analyze", "summary", str(out)], capture_output=True, text=True)
    assert summary.returncode == 0 and "n/a" in summary.stdout, summary.stdout + summary.stderr
    assert "disagree" not in summary.stdout + summary.stderr


def test_traced_run_reports_figures(tmp_path):
    p = mr.run_minipt(RUN + ["--out", str(tmp_path / "t.h5")], ranks=2, check=True)
    perf = mr.parse_performance(p.stdout)
    assert 0 < float(perf["utilization"]) <= 1, perf
    # The peak MFU is taken against, and where it came from (emulated: compute.peak_tflops).
    assert "from compute.peak_tflops" in p.stdout, p.stdout


@pytest.mark.parametrize("content,why", [
    (None, "missing"),
    ('{"header": {"format": "minipt-tuning", "version": 1, "identity": "x", "entries": 1},\n',
     "truncated"),
    ('{"header": {"format": "minipt-tuning", "version": 1, "identity": "x", "entries": 2},'
     ' "choices": {"a": "1"}}', "a choice short"),
    ("not json at all", "damaged"),
])
def test_bad_tuning_file_is_exit_2_naming_key_and_file(tmp_path, content, why):
    path = tmp_path / "tuning.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "o.h5"
    p = mr.run_minipt(RUN + ["--set", f"compute.tuning={path}", "--out", str(out)], ranks=2)
    assert p.returncode == 2, (why, p.stdout, p.stderr)
    err = mr.launcher_free_stderr(p.stderr)
    assert "compute.tuning" in err and str(path) in err, (why, err)
    assert err.count("minipt: error") == 1, (why, err)  # printed once, by rank 0
    assert not out.exists() and not (tmp_path / "o.json").exists()
