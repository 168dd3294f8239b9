"""Costs of the scale model beyond the per-unit fits (issue 29):
  * a cost file calibrated on fewer decoder layers than the configuration is applied with
    the configuration's shape: a 4-layer file on a 48-layer model times 48 blocks and one
    head, in `minipt plan` and in `minipt simulate`;
"""

import os
import tomllib

import h5py
import numpy as np

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

EX = os.path.join(mr.REPO_ROOT, "analysis", "examples")
COST14 = os.path.join(EX, "gpu-1xh200", "cost-14b.toml")
MODEL14 = os.path.join(mr.REPO_ROOT, "inputs", "models", "qwen2.5-14b.toml")
# One sequence of 20,000 tokens on one rank: one microbatch, sum of L^2 = 20000^2.
ONE_SEQUENCE = ["--set", "run.steps=1", "--set", "run.warmup_steps=0", "--set",
                "workload.minibatch_size=1", "--set", "workload.distribution=\"constant\"",
                "--set", "workload.mean=20000", "--set", "workload.min=20000", "--set",
                "workload.max=20000", "--set", "compute.backend=\"emulated\""]
TOKENS = 20000


def fit_seconds(cost, kind, p):
    f = cost["compute"][kind][p]
    return f["a"] + f["b"] * TOKENS + f["c"] * TOKENS ** 2


def test_the_cost_file_is_a_4_layer_file_of_the_14b_shape():
    with open(COST14, "rb") as f:
        cost = tomllib.load(f)
    with open(MODEL14, "rb") as f:
        model = tomllib.load(f)
    assert cost["model"]["layers"] == 4 and model["model"]["layers"] == 48


def test_plan_times_48_blocks_and_one_head_with_a_4_layer_file():
    with open(COST14, "rb") as f:
        cost = tomllib.load(f)
    proc = mr.run_minipt(["plan", "--config", MODEL14, *ONE_SEQUENCE, "--set",
                          "compute.cost_model=\"%s\"" % COST14, "--ranks", "1"], check=True)
    line = next(l for l in proc.stdout.splitlines() if l.strip().startswith("rank 0:"))
    modelled_ms = float(line.split("modelled ")[1].split(" ms")[0])
    block = sum(fit_seconds(cost, "block", p) for p in ("forward", "backward", "recompute"))
    ends = sum(fit_seconds(cost, k, p) for k in ("embedding", "head")
               for p in ("forward", "backward"))
    expected_ms = (48 * block + ends) * 1e3
    assert abs(modelled_ms - expected_ms) < 0.02, (modelled_ms, expected_ms, proc.stdout)


def test_simulate_times_48_blocks_and_one_head_with_a_4_layer_file(tmp_path):
    with open(COST14, "rb") as f:
        cost = tomllib.load(f)
    out = tmp_path / "s.h5"
    mr.run_minipt(["simulate", "--config", MODEL14, *ONE_SEQUENCE, "--ranks", "1", "--cost",
                   COST14, "--out", str(out), "--quiet"], check=True)
    with h5py.File(out) as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["events"].attrs["kind_names"]]
        kind, unit = f["events/kind"][:], f["events/unit"][:]
        d = (f["events/t_end_ns"][:] - f["events/t_start_ns"][:]) * 1e-9
    for p in ("forward", "backward", "recompute"):
        sel = kind == names.index(p)
        units = sorted(unit[sel].tolist())
        assert units == (list(range(1, 49)) if p == "recompute" else list(range(50))), p
        blocks = d[sel & (unit >= 1) & (unit <= 48)]
        assert np.allclose(blocks, fit_seconds(cost, "block", p), rtol=0, atol=2e-9), p
        if p != "recompute":
            head = d[sel & (unit == 49)]
            assert np.allclose(head, fit_seconds(cost, "head", p), rtol=0, atol=2e-9), p
