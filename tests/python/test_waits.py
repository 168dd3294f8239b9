"""Waiting for other ranks split from communication (analysis/minipt_analysis/waits.py) on
a hand-built two-rank fsdp file whose post times are known, worked out by hand below."""

import numpy as np
import pytest

from minipt_analysis import Run, compute_metrics
from minipt_analysis.cli import main
from minipt_analysis.waits import waiting_ns

from test_analysis import write_run

# One measured step (warm-up 0), global window 0-1000 µs, two ranks, unit 0, microbatch 0.
#   forward gather of unit 0: rank 0 posts at 0, rank 1 at 300 (it was busy): rank 0's wait
#     0-400 spends 300 µs waiting for rank 1 and 100 µs in communication; rank 1's wait
#     300-400 is all communication.
#   backward gather of unit 0 (same step, microbatch and unit: the second occurrence):
#     rank 1 posts at 500, rank 0 at 650; rank 1 waits 550-700: 100 waiting (to 650), 50
#     communication; rank 0 waits 650-700: 50 communication.
#   reduce_scatter of unit 0: both post at 800; rank 0 waits 850-900 (all communication);
#     a wait that ends before the last post (rank 1 waits 810-820 for a reduce-scatter that
#     rank 0 posted at 830) is waiting only.
HAND = [
    # rank 0
    dict(rank=0, step=0, lane=1, kind="gather", unit=0, microbatch=0, t0=0, t1=400),
    dict(rank=0, step=0, kind="wait", unit=0, microbatch=0, t0=0, t1=400),
    dict(rank=0, step=0, kind="forward", unit=0, microbatch=0, t0=400, t1=650),
    dict(rank=0, step=0, lane=1, kind="gather", unit=0, microbatch=0, t0=650, t1=700),
    dict(rank=0, step=0, kind="wait", unit=0, microbatch=0, t0=650, t1=700),
    dict(rank=0, step=0, kind="backward", unit=0, microbatch=0, t0=700, t1=800),
    dict(rank=0, step=0, lane=2, kind="reduce_scatter", unit=1, microbatch=0, t0=830, t1=900),
    dict(rank=0, step=0, lane=2, kind="reduce_scatter", unit=0, microbatch=0, t0=800, t1=820),
    dict(rank=0, step=0, kind="wait", unit=1, microbatch=0, t0=850, t1=900),
    # rank 1
    dict(rank=1, step=0, kind="forward", unit=1, microbatch=0, t0=0, t1=300),
    dict(rank=1, step=0, lane=1, kind="gather", unit=0, microbatch=0, t0=300, t1=400),
    dict(rank=1, step=0, kind="wait", unit=0, microbatch=0, t0=300, t1=400),
    dict(rank=1, step=0, lane=1, kind="gather", unit=0, microbatch=0, t0=500, t1=700),
    dict(rank=1, step=0, kind="wait", unit=0, microbatch=0, t0=550, t1=700),
    dict(rank=1, step=0, lane=2, kind="reduce_scatter", unit=1, microbatch=0, t0=800, t1=820),
    dict(rank=1, step=0, kind="wait", unit=1, microbatch=0, t0=810, t1=820),
    dict(rank=1, step=0, lane=2, kind="reduce_scatter", unit=0, microbatch=0, t0=800, t1=900),
]
STEPS = [(0, 0, 100, 0, 1000), (0, 1, 100, 0, 1000)]
# Waiting per rank (µs): rank 0: 300 (first gather); rank 1: 100 (second gather) + 10
# (a wait ending before rank 0's post of the reduce-scatter of unit 1 at 830).
# Communication: rank 0: 100 + 50 + 50 = 200; rank 1: 100 + 50 + 0 = 150.
WAITING_US = {0: 300, 1: 110}
COMM_US = {0: 200, 1: 150}


@pytest.mark.parametrize("mode", ["fsdp", "odc"])
def test_split_is_exact_on_known_post_times(tmp_path, mode):
    path = write_run(tmp_path / "hand.h5", world=2, events=HAND, steps=STEPS, warmup_steps=0,
                     mode=mode)
    with Run(path) as run:
        per_event = waiting_ns(run)
        m = compute_metrics(run)
        shares = m.breakdown_fraction()
        kinds = np.asarray(run.kind_names)[run.events["kind"]]
        ranks = run.events["rank"]
    for rank in (0, 1):
        waits = (kinds == "wait") & (ranks == rank)
        expected_waiting = WAITING_US[rank] if mode == "fsdp" else 0
        assert per_event[waits].sum() == expected_waiting * 1000
        total_wait = WAITING_US[rank] + COMM_US[rank]
        assert shares[rank, 2] == pytest.approx(expected_waiting / 1000)
        assert shares[rank, 1] == pytest.approx((total_wait - expected_waiting) / 1000)
    assert per_event[kinds != "wait"].sum() == 0
    waiting = sum(WAITING_US.values()) if mode == "fsdp" else 0
    assert m.waiting_fraction == pytest.approx(waiting / 2000)
    assert m.exposed_communication_fraction == pytest.approx(
        (sum(WAITING_US.values()) + sum(COMM_US.values()) - waiting) / 2000)


def test_groups_of_hybrid_sharding_wait_only_for_their_own_ranks(tmp_path):
    # parallel.shard = 1: every rank is its own group, so no rank waits for another.
    config = "[parallel]\nshard = 1\n"
    path = write_run(tmp_path / "hsdp.h5", world=2, events=HAND, steps=STEPS, warmup_steps=0,
                     config=config)
    with Run(path) as run:
        assert waiting_ns(run).sum() == 0


def test_summary_and_utilization_report_both(tmp_path, capsys):
    path = write_run(tmp_path / "hand.h5", world=2, events=HAND, steps=STEPS, warmup_steps=0)
    assert main(["summary", path, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    header, row = out.strip().splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert float(cells["waiting %"]) == pytest.approx(100 * 410 / 2000)
    assert float(cells["comm %"]) == pytest.approx(100 * 350 / 2000)
    assert main(["utilization", path, "-o", str(tmp_path / "u.png")]) == 0
    table = capsys.readouterr().out
    assert "| 0 | 35.0 | 20.0 | 30.0 | 15.0 |" in table.replace("  ", " ")
