"""Checks a timeline against the README's schema contract (beyond what reading needs).

Every check is vectorised over the tables; each failed check yields one line saying what
is wrong and where the first offending row is.
"""

from __future__ import annotations

import numpy as np

from .metrics import compute_metrics, check_against_summary
from .runfile import (DEFAULT_KIND_NAMES, DEFAULT_LANE_NAMES, EVENT_COLUMNS, STEP_COLUMNS,
                      WORKLOAD_COLUMNS, Run, run_identity_problems)

ROOT_ATTRIBUTES = ("schema_version", "minipt_version", "git_revision", "config_toml", "mode",
                   "balance", "backend", "workload", "world_size", "hosts", "devices",
                   "clock_error_bound_ns", "peak_tflops", "warmup_steps", "created_utc")
ALLOWED = {"mode": ("fsdp", "odc"),
           "balance": ("none", "micro", "mini", "localsort", "arrival", "localsort-packed"),
           "backend": ("emulated", "kokkos", "cuda", "simulated")}
DTYPES = {
    "events": {"rank": "i4", "step": "i4", "microbatch": "i4", "unit": "i4", "kind": "i1",
               "lane": "i1", "t_start_ns": "i8", "t_end_ns": "i8", "bytes": "i8",
               "tokens": "i8", "flops": "f8"},
    "steps": {"step": "i4", "rank": "i4", "tokens": "i8", "microbatches": "i4",
              "t_start_ns": "i8", "t_end_ns": "i8", "compute_ns": "i8", "loss": "f8"},
    "workload": {"step": "i4", "rank": "i4", "microbatch": "i4", "sequence": "i4",
                 "length": "i8"},
}
# Lane of each kind: 0 compute, 1 pull, 2 push.
LANE_OF_KIND = {"forward": 0, "backward": 0, "recompute": 0, "gather": 1, "reduce_scatter": 2,
                "get": 1, "accumulate": 2, "wait": 0, "barrier": 0, "optimizer": 0,
                "allreduce": 0, "accumulate_grad": 0, "replica_reduce": 0}


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate(run: Run) -> list[str]:
    problems: list[str] = []
    file = run._file

    missing = [a for a in ROOT_ATTRIBUTES if a not in run.attrs]
    if missing:
        problems.append(f"missing root attributes: {', '.join(missing)}")
    for key, allowed in ALLOWED.items():
        value = run.attr(key)
        if value is not None and value not in allowed:
            problems.append(f"root attribute {key} = {value!r}, expected one of {allowed}")
    world = run.world_size
    for key in ("hosts", "devices"):
        text = run.attr(key)
        if text is not None and len(text.split(";")) != world:
            problems.append(f"root attribute {key} has {len(text.split(';'))} entries for "
                            f"{world} ranks")
    if run.config is None:
        problems.append("config_toml is missing or is not valid TOML")

    for group, columns in (("events", EVENT_COLUMNS), ("steps", STEP_COLUMNS),
                           ("workload", WORKLOAD_COLUMNS)):
        for column in columns:
            name = f"/{group}/{column}"
            if name not in file:
                problems.append(f"missing dataset {name}")
                continue
            dataset = file[name]
            expected = np.dtype(DTYPES[group][column])
            if dataset.dtype != expected:
                problems.append(f"{name} has type {dataset.dtype}, expected {expected}")
            if dataset.shape != (len(getattr(run, group)),):
                problems.append(f"{name} has shape {dataset.shape}, expected "
                                f"({len(getattr(run, group))},)")
    if problems:
        return problems  # the table checks below need every column

    # Schema 1 files have the first 12 kinds (no replica_reduce); names are append-only.
    known = DEFAULT_KIND_NAMES[: max(12, min(len(run.kind_names), len(DEFAULT_KIND_NAMES)))]
    if tuple(run.kind_names[: len(known)]) != known:
        problems.append(f"/events kind_names {list(run.kind_names)} do not start with "
                        f"{list(known)}")
    if tuple(run.lane_names) != DEFAULT_LANE_NAMES:
        problems.append(f"/events lane_names {list(run.lane_names)}, expected "
                        f"{list(DEFAULT_LANE_NAMES)}")

    ev = run.events
    rank, lane = ev["rank"].astype(np.int64), ev["lane"].astype(np.int64)
    t0, t1 = ev["t_start_ns"], ev["t_end_ns"]
    kind = ev["kind"].astype(np.int64)
    if len(ev):
        bad = (rank < 0) | (rank >= world)
        if bad.any():
            problems.append(f"/events row {_first(bad)}: rank {rank[_first(bad)]} outside "
                            f"0..{world - 1}")
        bad = t1 < t0
        if bad.any():
            problems.append(f"/events: {int(bad.sum())} events end before they start (first "
                            f"row {_first(bad)})")
        same = (rank[1:] == rank[:-1]) & (lane[1:] == lane[:-1])
        order = (rank[1:] < rank[:-1]) | ((rank[1:] == rank[:-1]) & (lane[1:] < lane[:-1])) | (
            same & (t0[1:] < t0[:-1]))
        if order.any():
            problems.append(f"/events not sorted by (rank, lane, t_start_ns) at row "
                            f"{_first(order) + 1}")
        else:
            overlap = same & (t0[1:] < t1[:-1])
            if overlap.any():
                i = _first(overlap)
                problems.append(f"/events: {int(overlap.sum())} overlaps on one (rank, lane) "
                                f"(first: rows {i} and {i + 1}, rank {rank[i]} lane {lane[i]})")
        lane_of = np.full(256, -1, dtype=np.int64)
        for code, name in enumerate(run.kind_names):
            lane_of[code] = LANE_OF_KIND.get(name, -1)
        bad = (lane_of[kind & 0xFF] != lane) & (lane_of[kind & 0xFF] >= 0)
        if bad.any():
            i = _first(bad)
            problems.append(f"/events: {int(bad.sum())} events on the wrong lane (first row "
                            f"{i}: {run.kind_names[kind[i]]} on lane {lane[i]})")
        bad = (kind < 0) | (kind >= len(run.kind_names))
        if bad.any():
            problems.append(f"/events row {_first(bad)}: kind code {kind[_first(bad)]} has no "
                            "name")

    metrics = compute_metrics(run)
    steps = run.steps
    s_step, s_rank = steps["step"].astype(np.int64), steps["rank"].astype(np.int64)
    pairs = s_step * max(world, 1) + s_rank
    if len(np.unique(pairs)) != len(pairs):
        problems.append("/steps has more than one row for some (step, rank)")
    if len(pairs) != len(metrics.steps) * world:
        problems.append(f"/steps has {len(pairs)} rows, expected one per step and rank "
                        f"({len(metrics.steps)} x {world})")
    bad = steps["t_end_ns"] < steps["t_start_ns"]
    if bad.any():
        problems.append(f"/steps row {_first(bad)} ends before it starts")
    # A diverged or broken run: its loss is not a number (the README: the step's loss).
    bad = ~np.isfinite(steps["loss"].astype(np.float64))
    if bad.any():
        i = _first(bad)
        problems.append(f"/steps loss is not finite in {int(bad.sum())} rows (first: step "
                        f"{s_step[i]} rank {s_rank[i]}: {steps['loss'][i]})")

    if len(ev) and len(metrics.steps):
        index = np.searchsorted(metrics.steps, ev["step"])
        known = (index < len(metrics.steps)) & (
            metrics.steps[np.minimum(index, len(metrics.steps) - 1)] == ev["step"])
        if not known.all():
            i = _first(~known)
            problems.append(f"/events: {int((~known).sum())} events of steps without /steps "
                            f"rows (first: row {i}, step {ev['step'][i]}, rank {rank[i]}, "
                            f"{run.kind_names[kind[i] & 0xFF]})")
        index = np.minimum(index, len(metrics.steps) - 1)
        start = metrics.step_start_ns[index]
        end = start + metrics.step_ns[index]
        outside = known & ((t0 < start) | (t1 > end))
        if outside.any():
            i = _first(outside)
            problems.append(f"/events: {int(outside.sum())} events outside their step's "
                            f"global window (first row {i}: step {ev['step'][i]}, rank "
                            f"{rank[i]}, {run.kind_names[kind[i] & 0xFF]})")

    wl = run.workload
    if len(wl) and len(steps):
        key = wl["step"].astype(np.int64) * max(world, 1) + wl["rank"].astype(np.int64)
        order = np.argsort(pairs)
        where = np.searchsorted(pairs[order], key)
        where = np.minimum(where, len(pairs) - 1)
        found = pairs[order][where] == key
        if not found.all():
            problems.append(f"/workload row {_first(~found)} names a (step, rank) without "
                            "a /steps row")
        tokens = np.bincount(order[where[found]], weights=wl["length"][found],
                             minlength=len(pairs))
        bad = np.rint(tokens).astype(np.int64) != steps["tokens"]
        if bad.any():
            i = _first(bad)
            problems.append(f"/steps tokens disagree with /workload lengths in {int(bad.sum())}"
                            f" rows (first: step {s_step[i]} rank {s_rank[i]}: "
                            f"{int(steps['tokens'][i])} vs {int(tokens[i])})")

    if run.summary is None:
        problems.append("no /summary group")
    else:
        for key in ("utilization", "idle_fraction"):
            values = run.summary_per_rank.get(key)
            if values is None:
                problems.append(f"missing dataset /summary/{key}")
            elif values.shape != (world,):
                problems.append(f"/summary/{key} has shape {values.shape}, expected ({world},)")
    # A simulation of many ranks stores the events of a sample of them (sim_traced_ranks):
    # the recomputation takes the fractions over those, as /summary does (traced_ranks).
    traced = run.attr("sim_traced_ranks", None)
    if traced is not None and int(traced) != int(metrics.traced.sum()) and len(ev):
        problems.append(f"root attribute sim_traced_ranks = {int(traced)} but /events has "
                        f"events of {int(metrics.traced.sum())} ranks")
    problems += check_against_summary(run, metrics)
    problems += run_identity_problems(run)
    return problems
