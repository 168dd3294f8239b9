"""Per-layer stragglers (analysis/minipt_analysis/stragglers.py, `minipt-analyze
stragglers`): who arrived last at each fsdp collective (odc: barrier), the waiting it
caused, and the Eq. (1) imbalance term per step, on hand-built timelines whose answers
are worked out below, on the package's synthetic timeline and on committed measured runs."""

import os

import numpy as np
import pytest

from minipt_analysis import Run
from minipt_analysis.cli import main
from minipt_analysis.stragglers import BARRIER, step_imbalance, stragglers
from minipt_analysis.waits import waiting_ns

from test_analysis import write_run
from test_waits import HAND, STEPS

EX = os.path.join(os.path.dirname(__file__), "..", "..", "analysis", "examples")
REAL = [os.path.join(EX, "gpu-2xh200", "qwen2.5-1.5b_longalign_8x2_fsdp.h5"),
        os.path.join(EX, "gpu-4xh200", "qwen2.5-1.5b_longalign_8x4_fsdp.h5")]

# test_waits.HAND (fsdp, two ranks, one step). Collective instances and their last rank:
#   gather unit 0, first: rank 0 posts at 0, rank 1 at 300: rank 1 last; rank 0 waited 300.
#   gather unit 0, second: rank 1 at 500, rank 0 at 650: rank 0 last; rank 1 waited 100.
#   reduce_scatter unit 1: rank 1 at 800, rank 0 at 830: rank 0 last; rank 1 waited 10.
#   reduce_scatter unit 0: both at 800: a tie, the lower rank (0) counts as last; no wait.
# (rank, unit): (instances, last, caused µs)
HAND_ROWS = {(0, 0): (3, 2, 100), (0, 1): (1, 1, 10), (1, 0): (3, 1, 300), (1, 1): (1, 0, 0)}
# Compute: rank 0 forward unit 0 250 µs + backward unit 0 100; rank 1 forward unit 1 300.
# Unit 0: max 350, mean 175; unit 1: max 300, mean 150: the term is 175 + 150 = 325 µs.
HAND_TERM_US = 325


def test_hand_built_fsdp_timeline(tmp_path):
    path = write_run(tmp_path / "hand.h5", world=2, events=HAND, steps=STEPS, warmup_steps=0)
    with Run(path) as run:
        rows = {(r.rank, r.unit): (r.instances, r.last, r.wait_caused_ns // 1000)
                for r in stragglers(run)}
        assert rows == HAND_ROWS
        assert sum(v[2] for v in rows.values()) * 1000 == waiting_ns(run).sum()
        (s,) = step_imbalance(run)
        assert (s.step, s.per_layer_ns, s.per_collective_ns, s.step_ns) == \
            (0, HAND_TERM_US * 1000, HAND_TERM_US * 1000, 1000 * 1000)


# odc, three ranks, one step with two barriers:
#   first: rank 0 enters at 100, rank 1 at 300, rank 2 at 450 (all leave at 500): rank 2
#     last, causing 350 + 150 = 500 µs;
#   second: rank 2 at 600, rank 1 at 690, rank 0 at 700 (all leave at 710): rank 0 last,
#     causing 100 + 10 = 110 µs.
ODC = [dict(rank=r, step=0, kind="barrier", t0=t0, t1=500) for r, t0 in ((0, 100), (1, 300),
                                                                        (2, 450))] + \
      [dict(rank=r, step=0, kind="barrier", t0=t0, t1=710) for r, t0 in ((0, 700), (1, 690),
                                                                        (2, 600))]


def test_hand_built_odc_barriers(tmp_path):
    path = write_run(tmp_path / "odc.h5", world=3, events=ODC, mode="odc", warmup_steps=0,
                     steps=[(0, r, 10, 0, 800) for r in range(3)])
    with Run(path) as run:
        rows = {(r.rank, r.unit): (r.instances, r.last, r.wait_caused_ns // 1000)
                for r in stragglers(run)}
    assert rows == {(0, BARRIER): (2, 1, 110), (1, BARRIER): (2, 0, 0),
                    (2, BARRIER): (2, 1, 500)}


def check_invariants(run):
    """Every instance has one last rank; the waits caused add up to the waiting of the
    measured steps; fsdp's per-(microbatch, unit) term is at least the per-layer one (a
    maximum of sums is at most the sum of maxima)."""
    rows = stragglers(run)
    assert rows
    by_unit = {}
    for r in rows:
        by_unit.setdefault(r.unit, []).append(r)
    for unit, rs in by_unit.items():
        assert len({r.instances for r in rs}) == 1, unit  # every rank joins every instance
        assert sum(r.last for r in rs) == rs[0].instances, unit
    step = run.events["step"]
    first = run.warmup_steps if run.warmup_steps <= int(step.max()) else 0
    measured = step >= first
    assert sum(r.wait_caused_ns for r in rows) == waiting_ns(run)[measured].sum()
    steps = step_imbalance(run)
    assert steps and all(s.per_collective_ns >= s.per_layer_ns - 1 for s in steps)
    assert all(0 < s.per_layer_ns < s.step_ns for s in steps)
    return rows, steps


def test_synthetic_fsdp_timeline(tmp_path):
    from minipt_analysis import synth

    path = str(tmp_path / "synth.h5")
    synth.generate(path, events=20_000, ranks=4, layers=6, mode="fsdp", seed=5)
    with Run(path) as run:
        check_invariants(run)


@pytest.mark.parametrize("path", REAL, ids=["2xh200", "4xh200"])
def test_committed_measured_fsdp_runs(path, capsys):
    with Run(path) as run:
        rows, steps = check_invariants(run)
        units = int(run.config["model"]["layers"]) + 2
        assert len(rows) == run.world_size * units
        assert len(steps) == int(run.events["step"].max()) + 1 - run.warmup_steps
    assert main(["stragglers", path, "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "| rank | unit | fsdp collectives | last | last % | wait caused ms |" in out
    assert out.count("\n| ") == 2 + 3 + 2 + len(steps)  # header and rule of each table
    assert main(["stragglers", path, "--format", "csv"]) == 0
    csv_text = capsys.readouterr().out
    assert csv_text.startswith("rank,unit,fsdp collectives,last,last %,wait caused ms\n")


def test_simulated_fsdp_timeline(tmp_path):
    """A `minipt simulate` timeline (4 ranks, every rank traced) reads the same way."""
    import minipt_runner as mr

    if mr.skip_reason() is not None:
        pytest.skip(mr.skip_reason())
    out = tmp_path / "sim.h5"
    mr.run_minipt(["simulate", "--config", mr.DEMO_CONFIG, "--set", "run.steps=3", "--set",
                   "workload.minibatch_size=16", "--ranks", "4", "--out", str(out), "--quiet"],
                  check=True)
    with Run(str(out)) as run:
        rows, steps = check_invariants(run)
        assert sum(r.wait_caused_ns for r in rows) > 0
        assert len(steps) == 2
