"""Issue 30, item 2: `minipt simulate` with more ranks than sim.trace_ranks stores events
for the traced ranks only, so the time shares are taken over those ranks and say so:
FRACTION lines (traced_ranks=K), /summary (traced_ranks, exposed_communication_fraction,
waiting_fraction) and every minipt-analyze view (summary agrees with the file, the
utilisation breakdown shows the traced ranks, not the others as idle). Each figure is
checked against the traced ranks' events, summed here independently of minipt and of
the analysis package."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import minipt_runner as mr
from conftest import REPO_ROOT

RANKS, TRACED, STEPS, WARMUP = 64, 8, 3, 1
COMPUTE = ("forward", "backward", "recompute", "accumulate_grad")


def simulate(tmp_path, mode, scheme):
    out = str(tmp_path / f"{mode}.h5")
    proc = mr.run_minipt(["simulate", "--config", mr.DEMO_CONFIG, "--ranks", str(RANKS),
                          "--set", f"sim.trace_ranks={TRACED}", "--set", f"run.steps={STEPS}",
                          "--set", f"run.warmup_steps={WARMUP}", "--set", f"run.mode={mode}",
                          "--set", f"balance.scheme={scheme}", "--set",
                          "workload.minibatch_size=256", "--out", out], check=True, timeout=120)
    return out, proc.stdout


def fractions(stdout):
    """{name: (value, traced_ranks)} of the FRACTION lines."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("FRACTION "):
            _, name, value, traced = line.split()
            assert traced.startswith("traced_ranks="), line
            found[name] = (float(value), int(traced.split("=")[1]))
    return found


def shares_from_events(path):
    """Compute-lane time of the measured steps per kind group, summed over the ranks with
    events, / (Σ measured global step times × their number); and that number."""
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["events"].attrs["kind_names"]]
        ev = {k: f["events"][k][:] for k in ("rank", "step", "kind", "lane", "t_start_ns",
                                             "t_end_ns")}
        st = {k: f["steps"][k][:] for k in ("step", "t_start_ns", "t_end_ns")}
    wall = sum(st["t_end_ns"][st["step"] == s].max() - st["t_start_ns"][st["step"] == s].min()
               for s in range(WARMUP, STEPS))
    traced = len(np.unique(ev["rank"]))
    keep = (ev["step"] >= WARMUP) & (ev["lane"] == 0)
    duration = (ev["t_end_ns"] - ev["t_start_ns"])[keep]
    kind = np.array(names)[ev["kind"][keep]]
    total = lambda kinds: float(duration[np.isin(kind, kinds)].sum()) / (wall * traced)
    shares = {"compute": total(COMPUTE), "optimizer": total(["optimizer"]),
              "barrier": total(["barrier"]),
              # fsdp splits its waits between these two (waits.py); their sum is fixed
              "communication_and_waiting": total(["wait", "replica_reduce", "allreduce"])}
    shares["other"] = max(0.0, 1 - shares["compute"] - shares["optimizer"] - shares["barrier"]
                          - shares["communication_and_waiting"])
    return shares, traced


def analyze(*args):
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.path.join(REPO_ROOT, "analysis") + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minipt_analysis", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("mode,scheme", [("fsdp", "micro"), ("odc", "mini")])
def test_fractions_over_traced_ranks(mode, scheme, tmp_path):
    path, stdout = simulate(tmp_path, mode, scheme)
    shares, traced = shares_from_events(path)
    assert traced == TRACED
    lines = fractions(stdout)
    assert {t for _, t in lines.values()} == {TRACED}, stdout
    tol = 1e-4  # four decimals printed
    for name in ("compute", "optimizer", "barrier", "other"):
        assert lines[name][0] == pytest.approx(shares[name], abs=tol), (name, stdout)
    both = lines["exposed_communication"][0] + lines["waiting_for_ranks"][0]
    assert both == pytest.approx(shares["communication_and_waiting"], abs=2 * tol), stdout
    # The bug: divided by all 64 ranks, compute was about 1/8 of the traced ranks' share
    # and "other" the rest. Every simulated rank computes, so compute is far from 0.
    assert shares["compute"] > 0.02 and lines["other"][0] < 0.5, stdout

    with h5py.File(path, "r") as f:
        summary = {k: v.item() for k, v in f["summary"].attrs.items()}
        assert int(f.attrs["sim_traced_ranks"]) == TRACED
        per_rank = f["summary/utilization"][:]
    assert summary["traced_ranks"] == TRACED
    assert summary["exposed_communication_fraction"] == pytest.approx(
        lines["exposed_communication"][0], abs=tol)
    assert summary["waiting_fraction"] == pytest.approx(
        lines["waiting_for_ranks"][0] + lines["barrier"][0], abs=2 * tol)
    assert summary["exposed_communication_fraction"] + summary["waiting_fraction"] == \
        pytest.approx(shares["communication_and_waiting"] + shares["barrier"], abs=1e-9)

    # minipt-analyze: the recomputation agrees with the file (no "disagrees"), the
    # utilisation table lists the traced ranks and the mean over every rank.
    proc = analyze("summary", path, "--check", "--format", "csv")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip().splitlines()[1].endswith(",file"), proc.stdout
    proc = analyze("validate", path)
    assert proc.returncode == 0, proc.stdout
    proc = analyze("utilization", path, "-o", str(tmp_path / "u.png"))
    assert proc.returncode == 0, proc.stderr
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| ") and l[2].isdigit()]
    assert len(rows) == TRACED, proc.stdout
    assert f"events of {TRACED} of {RANKS} ranks (traced_ranks={TRACED}" in proc.stdout
    assert f"mean utilisation over every rank {100 * per_rank.mean():.1f}%" in proc.stdout
    # No traced rank shows as all idle: each has its compute share.
    assert all(float(r.split("|")[2]) > 0 for r in rows), proc.stdout
