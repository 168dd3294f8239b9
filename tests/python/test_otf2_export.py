"""minipt-analyze otf2: the archive read back (OTF2 Python reader, and otf2-print where
installed) holds every /events row with the same timestamps, rank and lane, and the
RMA / collective records that fit each mode."""

import os
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from minipt_analysis import Run
from minipt_analysis.cli import main

otf2 = pytest.importorskip(
    "otf2", reason="OTF2 Python bindings absent (Debian python3-otf2 or pip otf2; run/deps.sh)")


def read_back(anchor):
    """[(location name, event class name, time, region name or None, attributes)]"""
    rows = []
    with otf2.reader.open(anchor) as trace:
        for location, event in trace.events:
            region = getattr(event, "region", None)
            attrs = {a.name: v for a, v in (event.attributes or {}).items()}
            rows.append((location.name, type(event).__name__, event.time,
                         region.name if region is not None else None, attrs))
    return rows


@pytest.mark.parametrize("mode", ["fsdp", "odc"])
def test_archive_has_every_event(real_runs, tmp_path, mode, capsys):
    out = tmp_path / f"{mode}.otf2"
    assert main(["otf2", real_runs[mode], "-o", str(out)]) == 0
    assert "(6 locations" in capsys.readouterr().out  # 2 ranks x 3 lanes
    rows = read_back(str(out / "traces.otf2"))
    with Run(real_runs[mode]) as run:
        ev = run.events
        kinds = np.asarray(run.kind_names)[ev["kind"]]
        lanes = np.asarray(run.lane_names)[ev["lane"]]
        want_enter = Counter()
        want_leave = Counter()
        for r, lane, kind, t0, t1, step, mb in zip(ev["rank"], lanes, kinds, ev["t_start_ns"],
                                                    ev["t_end_ns"], ev["step"], ev["microbatch"]):
            want_enter[(f"rank {r} {lane}", int(t0), kind, int(step), int(mb))] += 1
            want_leave[(f"rank {r} {lane}", int(t1), kind)] += 1
        n = len(ev)
        with_tokens = np.count_nonzero(
            np.isin(kinds, ["forward", "backward", "recompute"]) & (ev["tokens"] > 0))
    got_enter = Counter((loc, t, region.split()[0], a["step"], a["microbatch"])
                        for loc, cls, t, region, a in rows if cls == "Enter")
    got_leave = Counter((loc, t, region.split()[0]) for loc, cls, t, region, a in rows
                        if cls == "Leave")
    assert sum(got_enter.values()) == n and got_enter == want_enter
    assert got_leave == want_leave
    classes = Counter(cls for _, cls, *_ in rows)
    if mode == "odc":
        # Two ranks: each get / accumulate addresses the one other owner.
        assert classes["RmaGet"] == np.count_nonzero(kinds == "get")
        assert classes["RmaAtomic"] == np.count_nonzero(kinds == "accumulate")
        assert classes["RmaOpCompleteBlocking"] == classes["RmaGet"] + classes["RmaAtomic"]
    else:
        assert classes["MpiCollectiveEnd"] == np.count_nonzero(
            np.isin(kinds, ["gather", "reduce_scatter", "allreduce", "barrier"]))
    assert classes["Metric"] == 2 * with_tokens > 0
    if shutil.which("otf2-print"):
        text = subprocess.run(["otf2-print", str(out / "traces.otf2")], capture_output=True,
                              text=True, check=True).stdout
        assert sum(line.startswith("ENTER ") for line in text.splitlines()) == n
        assert sum(line.startswith("LEAVE ") for line in text.splitlines()) == n


def test_existing_output_is_an_error_naming_the_argument(real_runs, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["otf2", real_runs["fsdp"], "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and "already exists" in err and len(err.strip().splitlines()) == 1
    assert os.listdir(out) == ["keep.txt"]
    assert main(["otf2", real_runs["fsdp"], "-o", str(tmp_path / "no" / "dir")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["taken"]  # no temporary left behind
