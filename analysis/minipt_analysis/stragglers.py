"""Per-layer stragglers: who arrives last at each synchronisation, what that costs the other
ranks, and the imbalance term of the reference paper's Eq. (1), from any timeline.

fsdp: each (microbatch, unit) all-gather and reduce-scatter is a collective that cannot
complete before the last rank of its group has posted it (waits.py). For each rank and
unit: how many of the unit's collective instances that rank posted last, and the waiting
for other ranks (waits.py's rule: the part of a compute-lane wait before the last post)
that the instances it was last at caused on the other ranks. odc has no per-layer
collective: its synchronisations are the step's barriers (unit "barrier"), where the rank
that enters last is the straggler and the others' barrier time until it entered is the
wait it caused.

Imbalance, per step: t[r, u] = rank r's compute time (forward, backward, recompute) of
unit u summed over the step's microbatches; sum over u of (max_r t - mean_r t) is the
term by which a step synchronised at every layer exceeds a balanced one (Eq. (1)).
Beside it the same sum taken per (microbatch, unit), the granularity at which fsdp
synchronises (microbatches matched by index; a rank without that microbatch counts 0).
Only ranks with /events count (a simulation's traced ranks); warm-up steps are left out
unless the run has no other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .runfile import Run
from .tables import render
from .waits import _group_keys, collective_waits

COMPUTE_KINDS = ("forward", "backward", "recompute")
BARRIER = -1  # the unit shown for odc's barriers


@dataclass
class Straggler:
    rank: int
    unit: int             # BARRIER for odc's barriers
    instances: int        # synchronisations of this unit the rank took part in
    last: int             # ... that it entered last
    wait_caused_ns: int   # other ranks' waiting at the instances it entered last


@dataclass
class StepImbalance:
    step: int
    per_layer_ns: float   # sum over units of (max - mean) of the step's per-unit compute
    per_collective_ns: float  # the same per (microbatch, unit)
    step_ns: int          # the step's longest rank


def _measured(run: Run, step: np.ndarray) -> np.ndarray:
    first = run.warmup_steps if run.warmup_steps < int(step.max(initial=-1)) + 1 else 0
    return step >= first


def _fsdp_stragglers(run: Run, measured: np.ndarray):
    """(rank, unit, instance step, last-rank flag) per collective participation and the
    wait caused per instance."""
    ev = run.events
    cw = collective_waits(run)
    c = cw.coll
    keep = measured[c]
    rank = ev["rank"][c].astype(np.int64)[keep]
    unit = ev["unit"][c].astype(np.int64)[keep]
    inst = cw.instance[keep]
    is_last = rank == cw.last_rank[inst]
    instance_of_row = np.full(len(ev), -1, dtype=np.int64)
    instance_of_row[c] = cw.instance
    caused = np.zeros(len(cw.last_post), dtype=np.int64)
    w = cw.wait_rows
    wk = measured[w]
    np.add.at(caused, instance_of_row[cw.wait_coll[wk]], cw.waiting[w[wk]])
    return rank, unit, inst, is_last, caused


def _barrier_stragglers(run: Run, measured: np.ndarray):
    """The same for the barriers (odc): instance = (step, occurrence on each rank)."""
    ev = run.events
    names = list(run.kind_names)
    if "barrier" not in names:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=bool), empty
    b = np.flatnonzero(((ev["kind"].astype(np.int64) & 0xFF) == names.index("barrier"))
                       & measured)
    rank = ev["rank"][b].astype(np.int64)
    step = ev["step"][b].astype(np.int64)
    t0 = ev["t_start_ns"][b].astype(np.int64)
    t1 = ev["t_end_ns"][b].astype(np.int64)
    order = np.lexsort((t0, step, rank))
    b, rank, step, t0, t1 = b[order], rank[order], step[order], t0[order], t1[order]
    same = _group_keys(rank, step)
    starts = np.r_[True, same[1:] != same[:-1]] if len(b) else np.zeros(0, dtype=bool)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(b)), 0)) if len(b) else starts
    occurrence = np.arange(len(b)) - run_start
    inst = _group_keys(step, occurrence)
    n = int(inst.max()) + 1 if len(b) else 0
    last_post = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_post, inst, t0)
    is_max = t0 == last_post[inst]
    last_rank = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(last_rank, inst[is_max], rank[is_max])
    is_last = rank == last_rank[inst]
    caused = np.zeros(n, dtype=np.int64)
    np.add.at(caused, inst, np.clip(np.minimum(t1, last_post[inst]) - t0, 0, t1 - t0))
    return rank, np.full(len(b), BARRIER, dtype=np.int64), inst, is_last, caused


def stragglers(run: Run) -> list[Straggler]:
    """One row per (rank, unit) that took part in a synchronisation of the measured steps."""
    ev = run.events
    if len(ev) == 0:
        return []
    measured = _measured(run, ev["step"].astype(np.int64))
    parts = _fsdp_stragglers(run, measured) if run.mode == "fsdp" else \
        _barrier_stragglers(run, measured)
    rank, unit, inst, is_last, caused = parts
    rows = []
    if not len(rank):
        return rows
    key = _group_keys(rank, unit)
    for k in range(int(key.max()) + 1):
        sel = key == k
        lasts = sel & is_last
        # An instance's wait is caused once, by its last rank.
        rows.append(Straggler(int(rank[sel][0]), int(unit[sel][0]),
                              int(np.unique(inst[sel]).size), int(np.unique(inst[lasts]).size),
                              int(caused[np.unique(inst[lasts])].sum())))
    rows.sort(key=lambda s: (s.rank, s.unit))
    return rows


def step_imbalance(run: Run) -> list[StepImbalance]:
    """The Eq. (1) term of each measured step (module docstring)."""
    ev = run.events
    if len(ev) == 0:
        return []
    names = list(run.kind_names)
    codes = [names.index(k) for k in COMPUTE_KINDS if k in names]
    kind = ev["kind"].astype(np.int64) & 0xFF
    step = ev["step"].astype(np.int64)
    sel = np.isin(kind, codes) & _measured(run, step)
    rank = ev["rank"].astype(np.int64)
    ranks = np.unique(rank)
    r_index = np.searchsorted(ranks, rank[sel])
    s, u, mb = step[sel], ev["unit"].astype(np.int64)[sel], ev["microbatch"].astype(np.int64)[sel]
    d = (ev["t_end_ns"].astype(np.int64) - ev["t_start_ns"].astype(np.int64))[sel]
    st = run.steps
    out = []
    for step_id in np.unique(s):
        m = s == step_id

        def term(*cols):
            key = _group_keys(*cols)
            t = np.zeros((int(key.max()) + 1, len(ranks)))
            np.add.at(t, (key, r_index[m]), d[m])
            return float((t.max(axis=1) - t.mean(axis=1)).sum())

        in_step = st["step"] == step_id
        span = (st["t_end_ns"][in_step].astype(np.int64) - st["t_start_ns"][in_step]).max() \
            if in_step.any() else 0
        out.append(StepImbalance(int(step_id), term(u[m]), term(mb[m], u[m]), int(span)))
    return out


def _unit_label(run: Run, unit: int) -> str:
    if unit == BARRIER:
        return "barrier"
    layers = (run.config or {}).get("model", {}).get("layers") if isinstance(run.config, dict) \
        else None
    if unit == 0:
        return "0 (embedding)"
    if layers is not None and unit == int(layers) + 1:
        return f"{unit} (head)"
    return str(unit)


def straggler_tables(run: Run, fmt: str = "markdown", top: int | None = None) -> str:
    """The per-(rank, unit) table (largest caused wait first when `top` is given) and the
    per-step Eq. (1) table."""
    rows = stragglers(run)
    shown = sorted(rows, key=lambda r: -r.wait_caused_ns)[:top] if top else rows
    sync = "fsdp collectives" if run.mode == "fsdp" else "barriers"
    cells = [[r.rank, _unit_label(run, r.unit), r.instances, r.last,
              f"{100 * r.last / r.instances:.1f}" if r.instances else "n/a",
              f"{r.wait_caused_ns / 1e6:.3f}"] for r in shown]
    text = render(["rank", "unit", sync, "last", "last %", "wait caused ms"], cells, fmt)
    steps = step_imbalance(run)
    cells = [[s.step, f"{s.per_layer_ns / 1e6:.3f}", f"{s.per_collective_ns / 1e6:.3f}",
              f"{s.step_ns / 1e6:.3f}",
              f"{100 * s.per_collective_ns / s.step_ns:.2f}" if s.step_ns else "n/a"]
             for s in steps]
    table2 = render(["step", "sum_u (max-mean) ms", "per (microbatch, unit) ms", "step ms",
                     "per (microbatch, unit) % of step"], cells, fmt)
    if fmt == "csv":
        return text + "\n" + table2
    total = sum(r.wait_caused_ns for r in rows)
    head = (f"{run.title()} — {len(rows)} (rank, unit) rows; waiting caused at {sync}: "
            f"{total / 1e6:.3f} ms over the measured steps\n\n")
    return head + text + "\nEq. (1) imbalance term per step (compute time of the traced ranks):\n\n" \
        + table2
