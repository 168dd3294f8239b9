"""Costs of the scale model beyond the per-unit fits (issue 29):
  * a cost file calibrated on fewer decoder layers than the configuration is applied with
    the configuration's shape: a 4-layer file on a 48-layer model times 48 blocks and one
    head, in `minipt plan` and in `minipt simulate`; calibrate classifies each timeline's
    units with that timeline's layer count;
  * odc's one-sided traffic between nodes at a rate of its own (sim.onesided_inter_*):
    its default is today's (the collectives' override or the cost file's rows), a slow
    one slows odc and leaves fsdp alone;
  * odc's fixed per-step work (compute.odc_step_s), measured by calibrate from an odc
    timeline and spent once per step;
  * per-(rank, unit, microbatch) compute time variation: calibrate measures its spread
    (compute.block.PASS.cv) from the multi-GPU timelines; simulate draws from it with
    sim.variation_seed (the same seed the same run; 0 none).
"""
import re
import subprocess

import os
import tomllib

import h5py
import numpy as np

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

EX = os.path.join(mr.REPO_ROOT, "analysis", "examples")
COST14 = os.path.join(EX, "gpu-1xh200", "cost-14b.toml")
COST15 = os.path.join(EX, "gpu-1xh200", "cost.toml")
MODEL15 = os.path.join(mr.REPO_ROOT, "inputs", "models", "qwen2.5-1.5b.toml")
LONGALIGN = os.path.join(mr.REPO_ROOT, "inputs", "workloads", "longalign.toml")
TWO = os.path.join(EX, "gpu-2xh200", "qwen2.5-1.5b_longalign_8x2_%s.h5")
FOUR = os.path.join(EX, "gpu-4xh200", "qwen2.5-1.5b_longalign_8x4_%s.h5")
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


def simulate(tmp_path, ranks, *sets, cost=COST15):
    """PERFORMANCE of a short simulated 1.5B LongAlign-like run."""
    args = ["simulate", "--config", MODEL15, "--config", LONGALIGN, "--set",
            "compute.backend=\"cuda\"", "--set", "run.steps=3", "--set",
            "workload.minibatch_size=%d" % (2 * ranks), "--ranks", str(ranks), "--cost", cost,
            "--out", str(tmp_path / "s.h5"), "--quiet"]
    for kv in sets:
        args += ["--set", kv]
    return mr.parse_performance(mr.run_minipt(args, check=True).stdout)


NODES = ["sim.gpus_per_node=8"]  # 16 ranks: two nodes


def test_the_one_sided_inter_node_rate_is_the_collectives_by_default(tmp_path):
    odc = NODES + ["run.mode=\"odc\"", "balance.scheme=\"mini\""]
    default = simulate(tmp_path, 16, *odc)["tokens_per_s"]
    # cost.toml has no inter rows: the documented default one-sided rate, 40 GB/s, 25 us.
    same = simulate(tmp_path, 16, *odc, "sim.onesided_inter_bandwidth_GBps=40",
                    "sim.onesided_inter_latency_us=25")["tokens_per_s"]
    assert same == default
    # The collectives' override still sets it when the one-sided keys say "collectives".
    both = simulate(tmp_path, 16, *odc, "sim.inter_bandwidth_GBps=2")["tokens_per_s"]
    apart = simulate(tmp_path, 16, *odc, "sim.inter_bandwidth_GBps=2",
                     "sim.onesided_inter_bandwidth_GBps=\"collectives\"")["tokens_per_s"]
    assert apart == both < default


def test_a_slow_one_sided_inter_node_rate_slows_odc_not_fsdp(tmp_path):
    slow = ["sim.onesided_inter_bandwidth_GBps=2", "sim.onesided_inter_latency_us=500"]
    odc = NODES + ["run.mode=\"odc\"", "balance.scheme=\"mini\""]
    fsdp = NODES + ["run.mode=\"fsdp\"", "balance.scheme=\"micro\""]
    assert simulate(tmp_path, 16, *odc, *slow)["tokens_per_s"] < \
        0.9 * simulate(tmp_path, 16, *odc)["tokens_per_s"]
    assert simulate(tmp_path, 16, *fsdp, *slow)["tokens_per_s"] == \
        simulate(tmp_path, 16, *fsdp)["tokens_per_s"]


def with_terms(tmp_path, name, cost, **terms):
    """A copy of cost file `cost` with [compute] terms replaced (odc_step_s) or the block
    passes' cv set (cv_PASS)."""
    text = open(cost).read()
    for k, v in terms.items():
        if k.startswith("cv_"):
            text = re.sub(r"(\[compute\.block\.%s\]\n(?:[^\[]*?))(?:cv = [^\n]*\n)?(r2 = )" % k[3:],
                          r"\g<1>cv = %r\n\2" % v, text, count=1)
        elif re.search(r"^%s = " % k, text, re.M):
            text = re.sub(r"^%s = [^\n]*" % k, "%s = %r" % (k, v), text, flags=re.M)
        else:
            text = text.replace("microbatch_overhead_s = ",
                                "%s = %r\nmicrobatch_overhead_s = " % (k, v), 1)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def calibrate(tmp_path, name, *args):
    out = str(tmp_path / (name + ".toml"))
    proc = mr.run_minipt(["calibrate", *args, "--out", out], check=True)
    with open(out, "rb") as f:
        return out, tomllib.load(f), proc.stdout


def test_calibrate_measures_odcs_per_step_work_and_simulate_spends_it(tmp_path):
    path, cost, _ = calibrate(tmp_path, "odc4", FOUR % "odc")
    # The 4-GPU odc run: about 1 ms between AdamW and the publishing barrier.
    assert 0.5e-3 < cost["compute"]["odc_step_s"] < 2e-3
    _, fsdp_cost, _ = calibrate(tmp_path, "fsdp4", FOUR % "fsdp")
    assert fsdp_cost["compute"]["odc_step_s"] == 0  # no such barrier in fsdp
    odc = ["run.mode=\"odc\"", "balance.scheme=\"mini\""]
    zero = with_terms(tmp_path, "zero.toml", path, odc_step_s=0.0)
    half = with_terms(tmp_path, "half.toml", path, odc_step_s=0.5)
    a = simulate(tmp_path, 4, *odc, cost=zero)["step_ms"]
    b = simulate(tmp_path, 4, *odc, cost=half)["step_ms"]
    assert abs((b - a) - 500) < 1, (a, b)
    fsdp = ["run.mode=\"fsdp\"", "balance.scheme=\"micro\""]
    assert simulate(tmp_path, 4, *fsdp, cost=zero) == simulate(tmp_path, 4, *fsdp, cost=half)


def test_calibrate_measures_the_variation_from_multi_gpu_timelines(tmp_path):
    _, one, _ = calibrate(tmp_path, "one", ONE15)
    _, var, log = calibrate(tmp_path, "var", ONE15, "--variation", TWO % "fsdp",
                            "--variation", FOUR % "fsdp")
    for p in ("forward", "backward", "recompute"):
        # The fits come from the 1-GPU run alone; the spread from the multi-GPU ones.
        assert var["compute"]["block"][p]["b"] == one["compute"]["block"][p]["b"]
        assert 0.003 < var["compute"]["block"][p]["cv"] < 0.1, (p, var["compute"]["block"][p])
        assert var["compute"]["block"][p]["cv"] != one["compute"]["block"][p].get("cv")
    assert all("cv" not in var["compute"]["head"][p] for p in ("forward", "backward"))
    assert "block.backward variation: cv" in log


ONE15 = os.path.join(EX, "gpu-1xh200", "qwen2.5-1.5b_longalign_8x1_fsdp.h5")


def test_simulate_draws_the_variation_seeded(tmp_path):
    """On equal lengths (every rank the same work) a large spread (cv 0.3 on every block
    pass) makes fsdp, which waits for the slowest rank at every layer, slower; the same
    seed gives the same run, another seed another, seed 0 none."""
    var = with_terms(tmp_path, "var.toml", COST15, cv_forward=0.3, cv_backward=0.3,
                     cv_recompute=0.3)
    fsdp = ["run.mode=\"fsdp\"", "balance.scheme=\"micro\"", "workload.distribution=\"constant\"",
            "workload.mean=16000", "workload.min=16000", "workload.max=16000"]
    plain = simulate(tmp_path, 8, *fsdp)
    assert simulate(tmp_path, 8, *fsdp, cost=var) == plain  # seed 0: no variation
    one = simulate(tmp_path, 8, *fsdp, "sim.variation_seed=1", cost=var)
    assert simulate(tmp_path, 8, *fsdp, "sim.variation_seed=1", cost=var) == one
    two = simulate(tmp_path, 8, *fsdp, "sim.variation_seed=2", cost=var)
    assert two["step_ms"] != one["step_ms"]
    assert one["step_ms"] > 1.03 * plain["step_ms"] and two["step_ms"] > 1.03 * plain["step_ms"]


def test_calibrate_classifies_each_timelines_units_with_its_own_layers(tmp_path):
    """Emulated runs of 2 and 4 decoder layers calibrated together: every block event of
    both is a block sample (2 + 4 per microbatch), every head a head sample, and the file
    serves any depth from its shallowest source (layers = 2)."""
    paths = []
    for layers in (4, 2):  # the deeper first: its shape must not classify the other's units
        out = str(tmp_path / ("l%d.h5" % layers))
        mr.run_minipt(["run", "--config", mr.DEMO_CONFIG, "--set", "model.layers=%d" % layers,
                       "--set", "run.steps=2", "--set", "run.warmup_steps=0", "--set",
                       "workload.minibatch_size=2", "--set", "model.scale=0.00001", "--out", out,
                       "--quiet"], check=True, timeout=120)
        paths.append(out)
    microbatches = {}
    for layers, p in zip((4, 2), paths):
        with h5py.File(p) as f:
            microbatches[layers] = int(f["steps/microbatches"][:].sum())
    _, cost, _ = calibrate(tmp_path, "mixed", *paths)
    assert cost["model"]["layers"] == 2
    assert cost["compute"]["block"]["forward"]["samples"] == \
        4 * microbatches[4] + 2 * microbatches[2]
    assert cost["compute"]["head"]["forward"]["samples"] == sum(microbatches.values())
