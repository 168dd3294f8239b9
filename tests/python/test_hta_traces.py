"""minipt-analyze perfetto --per-rank: Holistic Trace Analysis loads the per-rank traces of
a 4-rank run, finds every rank, and its per-rank compute share agrees with minipt's
utilisation within 1 percentage point (the traces lay the measured global step windows
end to end, with marker kernels at their ends: minipt_analysis/perfetto.py)."""

import json
import logging
import os

import numpy as np
import pytest

from conftest import SMALL_RUN, run_minipt
from minipt_analysis import Run, compute_metrics
from minipt_analysis.cli import main

from test_analysis import write_run

pytest.importorskip("hta.trace_analysis",
                    reason="holistictraceanalysis absent (pip install holistictraceanalysis; "
                           "run/deps.sh)")


def hta_breakdown(trace_dir):
    from hta.trace_analysis import TraceAnalysis

    logging.disable(logging.WARNING)  # HTA warns about every trace's ns rounding
    try:
        analysis = TraceAnalysis(trace_dir=str(trace_dir))
        return analysis.get_temporal_breakdown(visualize=False).sort_values("rank")
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture(scope="module", params=["fsdp", "odc"])
def four_rank_run(request, tmp_path_factory):
    # SMALL_RUN: 4 steps, the first a warm-up step that minipt's figures leave out.
    path = str(tmp_path_factory.mktemp("hta") / f"{request.param}4.h5")
    run_minipt(4, ["run", *SMALL_RUN, "--set", f"run.mode={request.param}", "--out", path])
    return path


def test_hta_reads_per_rank_traces(four_rank_run, tmp_path, capsys):
    out = tmp_path / "traces"
    assert main(["perfetto", four_rank_run, "--per-rank", "-o", str(out)]) == 0
    assert sorted(os.listdir(out)) == [f"rank{r}.trace.json" for r in range(4)]
    with open(out / "rank2.trace.json") as f:
        doc = json.load(f)
    assert doc["distributedInfo"]["rank"] == 2 and doc["baseTimeNanoseconds"] > 0
    breakdown = hta_breakdown(out)
    assert breakdown["rank"].tolist() == [0, 1, 2, 3]
    with Run(four_rank_run) as run:
        m = compute_metrics(run)
        assert run.warmup_steps == 1 and m.steps_measured == 3
        summary_util = run.summary_per_rank["utilization"]
        busy_us = m.breakdown_ns[:, m.measured, 0].sum(axis=1) / 1e3
        util = m.utilization_per_rank
        ev = run.events
        # What the traces gave HTA on the run's clock (every step, each rank's first event
        # to its last): the quantity the windows fix, shown when the agreement fails.
        compute = np.isin(np.asarray(run.kind_names)[ev["kind"]],
                          ["forward", "backward", "recompute", "optimizer", "accumulate_grad"])
        run_clock = [
            ((ev["t_end_ns"] - ev["t_start_ns"])[compute & (ev["rank"] == r)].sum()
             / (ev["t_end_ns"][ev["rank"] == r].max() - ev["t_start_ns"][ev["rank"] == r].min()))
            for r in range(4)]
    # minipt's two utilisations (analysis, C++ /summary) are the same figure.
    assert np.allclose(util, summary_util, rtol=1e-9, atol=1e-12)
    hta_pct = breakdown["compute_time_pctg"].to_numpy(np.float64)
    detail = (f"HTA {hta_pct.tolist()} minipt {np.round(100 * util, 2).tolist()} "
              f"(run clock, every step: {np.round(100 * np.asarray(run_clock), 2).tolist()})")
    assert np.all(np.abs(hta_pct - 100 * util) < 1.0), detail
    # HTA's span is the sum of the measured global step windows on every rank (markers
    # rounded outward to whole microseconds) ...
    span_us = breakdown["kernel_time(us)"].to_numpy(np.float64)
    assert np.all((span_us >= m.wall_ns / 1e3 - 1e-6) & (span_us <= m.wall_ns / 1e3 + 2)), \
        (span_us, m.wall_ns)
    # ... and its compute time minipt's compute-busy time, less HTA's rounding of each
    # kernel inward to whole microseconds (at most 2 µs per compute event).
    hta_us = breakdown["compute_time(us)"].to_numpy(np.float64)
    n_compute = np.array([np.sum(compute & (ev["rank"] == r)
                                 & np.isin(ev["step"], m.steps[m.measured])) for r in range(4)])
    assert np.all((hta_us <= busy_us + 1e-6) & (hta_us >= busy_us - 2 * n_compute)), \
        (hta_us, busy_us)
    capsys.readouterr()


# A hand-built two-rank run (µs) whose measured global windows overlap, after a warm-up:
#   step 0 (warm-up): both ranks 0-1000; rank 0 forward 0-800, rank 1 forward 0-500.
#   step 1: rank 0 1000-2000, rank 1 1500-2500: global window 1000-2500 (1500 µs).
#     rank 0 forward 1000-1600, wait 1600-2000; rank 1 forward 1500-1900, allreduce to 2500.
#   step 2: rank 0 2100-3000, rank 1 2600-3200: global window 2100-3200 (1100 µs),
#     overlapping step 1's by 400 µs. rank 0 forward 2100-2700; rank 1 forward 2600-3100.
# minipt: wall 1500 + 1100 = 2600 µs; busy 1200 and 900 µs: utilisation 46.15 %, 34.62 %.
# On the run's clock the ranks' first-to-last spans are 0-2700 and 0-3100 with warm-up
# compute included: (800 + 1200) / 2700 = 74.07 % and (500 + 900) / 3100 = 45.16 %.
HAND = [
    dict(rank=0, step=0, kind="forward", t0=0, t1=800),
    dict(rank=1, step=0, kind="forward", t0=0, t1=500),
    dict(rank=0, step=1, kind="forward", t0=1000, t1=1600),
    dict(rank=0, step=1, kind="wait", t0=1600, t1=2000),
    dict(rank=1, step=1, kind="forward", t0=1500, t1=1900),
    dict(rank=1, step=1, kind="allreduce", t0=1900, t1=2500),
    dict(rank=0, step=2, kind="forward", t0=2100, t1=2700),
    dict(rank=1, step=2, kind="forward", t0=2600, t1=3100),
]
HAND_STEPS = [(0, 0, 10, 0, 1000), (0, 1, 10, 0, 1000), (1, 0, 10, 1000, 2000),
              (1, 1, 10, 1500, 2500), (2, 0, 10, 2100, 3000), (2, 1, 10, 2600, 3200)]


def test_hta_compute_share_is_utilisation_on_overlapping_windows(tmp_path, capsys):
    path = write_run(tmp_path / "hand.h5", world=2, events=HAND, steps=HAND_STEPS,
                     warmup_steps=1)
    with Run(path) as run:
        util = compute_metrics(run).utilization_per_rank
    assert util == pytest.approx([1200 / 2600, 900 / 2600])
    out = tmp_path / "traces"
    assert main(["perfetto", path, "--per-rank", "-o", str(out)]) == 0
    breakdown = hta_breakdown(out)
    assert breakdown["kernel_time(us)"].tolist() == [2600, 2600]
    assert breakdown["compute_time(us)"].tolist() == [1200, 900]
    assert breakdown["compute_time_pctg"].tolist() == [46.15, 34.62]
    # rank 0's wait is non-compute; the rest of each span (2600 - 1200 - 400; 2600 - 900 -
    # 600) is idle.
    assert breakdown["non_compute_time(us)"].tolist() == [400, 600]
    assert breakdown["idle_time(us)"].tolist() == [1000, 1100]
    # Step 2's events start where step 1's window ends on the traces' axis (1500 µs), each
    # rank at its own offset into the window; the run's clock stays in args.t_ns.
    with open(out / "rank1.trace.json") as f:
        doc = json.load(f)
    forward = [e for e in doc["traceEvents"] if e["name"] == "forward"]
    assert [(e["ts"], e["dur"], e["args"]["t_ns"]) for e in forward] == [
        (500.0, 400.0, 1_500_000), (2000.0, 500.0, 2_600_000)]
    assert doc["otherData"]["steps"] == [1, 2]
    capsys.readouterr()


def test_per_rank_into_an_existing_directory_is_an_error(tmp_path, capsys):
    path = write_run(tmp_path / "hand.h5", world=2, events=HAND, steps=HAND_STEPS,
                     warmup_steps=1)
    assert main(["perfetto", path, "--per-rank", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and "already exists" in err
