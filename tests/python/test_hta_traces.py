"""minipt-analyze perfetto --per-rank: Holistic Trace Analysis loads the per-rank traces of
a 4-rank run, finds every rank, and its computation-kernel time per rank is minipt's
compute-busy time."""

import json
import os

import numpy as np
import pytest

from conftest import SMALL_RUN, run_minipt
from minipt_analysis import Run, compute_metrics
from minipt_analysis.cli import main

pytest.importorskip("hta.trace_analysis",
                    reason="holistictraceanalysis absent (pip install holistictraceanalysis; "
                           "run/deps.sh)")


@pytest.fixture(scope="module")
def four_rank_fsdp(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hta") / "fsdp4.h5")
    run_minipt(4, ["run", *SMALL_RUN, "--set", "run.warmup_steps=0", "--set", "run.steps=2",
                   "--out", path])
    return path


def test_hta_reads_per_rank_traces(four_rank_fsdp, tmp_path, capsys):
    from hta.trace_analysis import TraceAnalysis

    out = tmp_path / "traces"
    assert main(["perfetto", four_rank_fsdp, "--per-rank", "-o", str(out)]) == 0
    assert sorted(os.listdir(out)) == [f"rank{r}.trace.json" for r in range(4)]
    with open(out / "rank2.trace.json") as f:
        doc = json.load(f)
    assert doc["distributedInfo"]["rank"] == 2 and doc["baseTimeNanoseconds"] > 0
    breakdown = TraceAnalysis(trace_dir=str(out)).get_temporal_breakdown(visualize=False)
    assert sorted(breakdown["rank"].tolist()) == [0, 1, 2, 3]
    with Run(four_rank_fsdp) as run:
        m = compute_metrics(run)
        busy_us = m.breakdown_ns[:, m.measured, 0].sum(axis=1) / 1e3
    hta_us = breakdown.sort_values("rank")["compute_time(us)"].to_numpy(np.float64)
    # HTA rounds events to whole microseconds.
    assert np.allclose(hta_us, busy_us, rtol=0.01, atol=2 * len(run.events) / 4), (hta_us, busy_us)
    capsys.readouterr()


def test_per_rank_into_an_existing_directory_is_an_error(four_rank_fsdp, tmp_path, capsys):
    assert main(["perfetto", four_rank_fsdp, "--per-rank", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and "already exists" in err
