"""`minipt plan --json`: the bound of the text output's BOUND line, as one JSON object
(ranks, measured steps, fsdp_ms, odc_ms, ratio, and per step the same with whether the
summary counts it), for scripts that would otherwise parse stdout.

Needs MINIPT_BIN=/path/to/minipt.
"""

import json

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

PLAN = ["plan", "--config", mr.DEMO_CONFIG, "--ranks", "4", "--set", "run.steps=3",
        "--set", "run.warmup_steps=1"]


def test_json_is_the_bound_line():
    text = mr.run_minipt(PLAN, check=True).stdout
    bound = [line for line in text.splitlines() if line.startswith("BOUND ")]
    assert len(bound) == 1, text
    want = dict(kv.split("=") for kv in bound[0].split()[1:])
    got = json.loads(mr.run_minipt(PLAN + ["--json"], check=True).stdout)
    assert got["ranks"] == int(want["ranks"]) == 4
    assert got["steps"] == int(want["steps"]) == 2
    for key in ("fsdp_ms", "odc_ms"):
        assert f"{got[key]:.3f}" == want[key], key
    assert f"{got['ratio']:.4f}" == want["ratio"]
    # Per step: the text's "modelled step" lines; the warm-up step is not counted.
    steps = [line for line in text.splitlines() if "modelled step, communication free" in line]
    assert [s["step"] for s in got["per_step"]] == [0, 1, 2]
    assert [s["measured"] for s in got["per_step"]] == [False, True, True]
    for line, s in zip(steps, got["per_step"]):
        assert f"fsdp+micro {s['fsdp_ms']:.2f} ms, odc+mini {s['odc_ms']:.2f} ms" in line
    assert got["fsdp_ms"] == pytest.approx(sum(s["fsdp_ms"] for s in got["per_step"][1:]))
    # Per step and rank, the own plan's modelled microbatch times: they sum to the text's
    # "rank R: ... modelled X ms" (the demo's fsdp + LB-Micro: equal counts, 4 ranks).
    ranks = [line for line in text.splitlines() if line.startswith("  rank ")]
    per_rank = [mb for s in got["per_step"] for mb in s["microbatch_ms"]]
    assert len(ranks) == len(per_rank) == 3 * 4
    for line, mbs in zip(ranks, per_rank):
        assert f"modelled {sum(mbs):.2f} ms" in line, (line, mbs)
    assert len({len(mbs) for mbs in per_rank[:4]}) == 1  # fsdp: equal microbatch counts


def test_json_only_for_plan():
    proc = mr.run_minipt(["run", "--config", mr.DEMO_CONFIG, "--json"])
    assert proc.returncode == 2
    assert "--json" in proc.stderr and "is an option of 'plan'" in proc.stderr
