"""Figures of merit of one run, computed from its tables with the README's definitions.

Definitions (README, "HDF5 timeline schema"):
  measured steps      steps >= warmup_steps (all steps when none is beyond the warm-up,
                      as minipt's own summary does)
  global step time    max over ranks of /steps t_end_ns - min over ranks of /steps t_start_ns
  wall                sum of global step times over measured steps (the same for every rank)
  tokens/s            measured tokens (sum of /steps tokens) / wall
  utilisation(rank)   compute-busy event time of the rank over measured steps / wall, where
                      compute-busy kinds are forward, backward, recompute, optimizer and
                      accumulate_grad
  idle(rank)          1 - utilisation(rank); run figures are means over ranks
  MFU                 model FLOPs (forward + backward events, no recompute) / (wall x ranks x
                      peak), i.e. 6*N*tokens + attention FLOPs over the peak the file names

A simulation of more ranks than sim.trace_ranks stores /events for a sample of ranks
(the traced ranks; every rank has /steps): utilisation per rank then takes an untraced
rank's compute-busy time from /steps compute_ns (as minipt's own summary does for every
rank), the exposed-communication and waiting fractions and the per-rank breakdown cover
the traced ranks only (what /summary's traced_ranks and the FRACTION lines say), and MFU,
which needs every rank's FLOPs, is the file's own.

All sums are vectorised: events are binned into (rank, step, category) with one bincount,
so a million-event file costs a few column reads and a handful of array passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .runfile import AnalysisError, Run
from .waits import waiting_ns

COMPUTE_KINDS = ("forward", "backward", "recompute", "optimizer", "accumulate_grad")
MODEL_FLOP_KINDS = ("forward", "backward")

# Where each compute-lane event's time goes in the utilisation breakdown. Pull/push lane
# events overlap compute and are not part of it; "other idle" is whatever the compute lane
# leaves unaccounted inside the global step (gaps, launch overhead, waiting for the step).
# fsdp's waits are split between the two middle categories (waits.py): the part before
# the last rank posted the collective is waiting for other ranks.
CATEGORIES = ("compute", "exposed communication", "waiting for other ranks", "other idle")
CATEGORY_OF_KIND = {
    "forward": 0, "backward": 0, "recompute": 0, "optimizer": 0, "accumulate_grad": 0,
    "wait": 1, "replica_reduce": 1,
    "barrier": 2, "allreduce": 2,
}

SUMMARY_KEYS = ("tokens_per_s", "tokens_per_s_per_rank", "step_ms", "utilization",
                "idle_fraction", "exposed_communication_fraction", "waiting_fraction", "mfu",
                "steps_measured", "tokens")


@dataclass
class RunMetrics:
    world_size: int
    steps: np.ndarray          # step ids present in /steps, ascending
    measured: np.ndarray       # bool per step: step >= warmup_steps
    step_start_ns: np.ndarray  # global step start (min over ranks)
    step_ns: np.ndarray        # global step time per step
    step_tokens: np.ndarray    # tokens per step, all ranks
    # time per (rank, step index, category) in ns; the last category is derived as
    # global step time minus the others (never negative)
    breakdown_ns: np.ndarray
    model_flops: float         # forward + backward FLOPs over measured steps
    peak_tflops: float
    traced: np.ndarray = None  # bool per rank: its events are in /events (default: all)

    def __post_init__(self):
        if self.traced is None:
            self.traced = np.ones(self.world_size, dtype=bool)

    @property
    def traced_ranks(self) -> np.ndarray:
        """The ranks whose events the file holds (all but for a sampled simulation)."""
        return np.flatnonzero(self.traced)

    @property
    def sampled(self) -> bool:
        """Only some ranks have events (minipt simulate beyond sim.trace_ranks)."""
        return bool(len(self.traced)) and not bool(self.traced.all())

    @property
    def steps_measured(self) -> int:
        return int(self.measured.sum())

    @property
    def wall_ns(self) -> int:
        return int(self.step_ns[self.measured].sum())

    @property
    def tokens(self) -> int:
        return int(self.step_tokens[self.measured].sum())

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / (self.wall_ns * 1e-9) if self.wall_ns > 0 else math.nan

    @property
    def tokens_per_s_per_rank(self) -> float:
        return self.tokens_per_s / self.world_size if self.world_size else math.nan

    @property
    def step_ms(self) -> float:
        n = self.steps_measured
        return self.wall_ns / n * 1e-6 if n else math.nan

    @property
    def utilization_per_rank(self) -> np.ndarray:
        if self.wall_ns <= 0:
            return np.full(self.world_size, math.nan)
        busy = self.breakdown_ns[:, self.measured, 0].sum(axis=1)
        return busy / self.wall_ns

    @property
    def idle_fraction_per_rank(self) -> np.ndarray:
        return 1.0 - self.utilization_per_rank

    @property
    def utilization(self) -> float:
        per_rank = self.utilization_per_rank
        return float(per_rank.mean()) if per_rank.size else math.nan

    @property
    def idle_fraction(self) -> float:
        return 1.0 - self.utilization

    def _category_fraction(self, category: int) -> float:
        traced = int(self.traced.sum())
        if self.wall_ns <= 0 or not traced:
            return math.nan
        total = self.breakdown_ns[self.traced][:, self.measured, category].sum()
        return float(total) / (self.wall_ns * traced)

    @property
    def exposed_communication_fraction(self) -> float:
        """Share of the traced ranks' wall time in exposed communication (mean over them)."""
        return self._category_fraction(1)

    @property
    def waiting_fraction(self) -> float:
        """Share of the traced ranks' wall time spent waiting for other ranks."""
        return self._category_fraction(2)

    @property
    def mfu(self) -> float:
        if self.sampled:  # the untraced ranks' FLOPs are not in the file
            return math.nan
        denominator = self.wall_ns * 1e-9 * self.world_size * self.peak_tflops * 1e12
        return self.model_flops / denominator if denominator > 0 else math.nan

    def breakdown_fraction(self) -> np.ndarray:
        """Share of wall per (rank, category) over measured steps; rows sum to 1. Rows of
        untraced ranks hold their compute share only (the other categories are unknown):
        show the traced_ranks' rows."""
        wall = self.wall_ns
        totals = self.breakdown_ns[:, self.measured, :].sum(axis=1).astype(np.float64)
        return totals / wall if wall > 0 else np.full_like(totals, math.nan)

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in SUMMARY_KEYS}


def first_measured_step(warmup_steps: int, steps: np.ndarray) -> int:
    """warmup_steps, except when the run has no step beyond the warm-up: then every step
    is measured (what minipt's own summary does, rather than report nothing)."""
    n_steps = int(steps.max()) + 1 if len(steps) else 0
    return warmup_steps if warmup_steps < n_steps else 0


def _kind_lookup(run: Run, names) -> np.ndarray:
    """Boolean table indexed by kind code: is the kind one of `names`?"""
    table = np.zeros(256, dtype=bool)
    for code, name in enumerate(run.kind_names):
        table[code] = name in names
    return table


def compute_metrics(run: Run) -> RunMetrics:
    world = run.world_size
    step_col = run.steps["step"].astype(np.int64)
    rank_col = run.steps["rank"].astype(np.int64)
    start_col = run.steps["t_start_ns"].astype(np.int64)
    end_col = run.steps["t_end_ns"].astype(np.int64)
    tokens_col = run.steps["tokens"].astype(np.int64)
    if len(step_col) and (rank_col.min() < 0 or rank_col.max() >= world):
        raise AnalysisError(f"{run.path}: /steps names rank {int(rank_col.max())} but "
                            f"world_size is {world}")

    steps, step_index = np.unique(step_col, return_inverse=True)
    n_steps = len(steps)
    step_start = np.full(n_steps, np.iinfo(np.int64).max, dtype=np.int64)
    step_end = np.full(n_steps, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(step_start, step_index, start_col)
    np.maximum.at(step_end, step_index, end_col)
    step_ns = np.maximum(step_end - step_start, 0) if n_steps else np.zeros(0, np.int64)
    step_tokens = np.bincount(step_index, weights=tokens_col, minlength=n_steps).astype(np.int64)
    measured = steps >= first_measured_step(run.warmup_steps, steps)

    # Events -> (rank, step index, category) sums.
    n_cat = len(CATEGORIES)
    breakdown = np.zeros((world, n_steps, n_cat), dtype=np.int64)
    model_flops = 0.0
    if len(run.events) and n_steps:
        ev_rank = run.events["rank"].astype(np.int64)
        ev_step = run.events["step"].astype(np.int64)
        ev_kind = run.events["kind"].astype(np.int64) & 0xFF
        duration = run.events["t_end_ns"] - run.events["t_start_ns"]
        category = np.full(256, -1, dtype=np.int64)
        for code, name in enumerate(run.kind_names):
            category[code] = CATEGORY_OF_KIND.get(name, -1)
        ev_cat = category[ev_kind]
        ev_step_index = np.searchsorted(steps, ev_step)
        ev_step_index_clipped = np.minimum(ev_step_index, n_steps - 1)
        known = (steps[ev_step_index_clipped] == ev_step) & (ev_rank >= 0) & (ev_rank < world)
        keep = known & (ev_cat >= 0)
        flat = (ev_rank[keep] * n_steps + ev_step_index_clipped[keep]) * n_cat + ev_cat[keep]
        sums = np.bincount(flat, weights=duration[keep], minlength=world * n_steps * n_cat)
        breakdown = np.rint(sums).astype(np.int64).reshape(world, n_steps, n_cat)
        # fsdp: the waiting-for-other-ranks part of each wait moves out of communication.
        waiting = waiting_ns(run)
        moved = keep & (waiting > 0)
        if moved.any():
            flat_rs = ev_rank[moved] * n_steps + ev_step_index_clipped[moved]
            per_rank_step = np.bincount(flat_rs, weights=waiting[moved],
                                        minlength=world * n_steps)
            per_rank_step = np.rint(per_rank_step).astype(np.int64).reshape(world, n_steps)
            breakdown[:, :, 1] -= per_rank_step
            breakdown[:, :, 2] += per_rank_step

        flop_kinds = _kind_lookup(run, MODEL_FLOP_KINDS)[ev_kind]
        in_measured = known & measured[ev_step_index_clipped]
        model_flops = float(run.events["flops"][flop_kinds & in_measured].sum())

    # Ranks without events in a file that has events: a sampled simulation. Their compute
    # comes from /steps compute_ns, as minipt's summary takes it.
    traced = np.ones(world, dtype=bool)
    if len(run.events):
        traced[:] = False
        traced[np.unique(run.events["rank"].astype(np.int64))] = True
    if not traced.all() and n_steps:
        compute_col = run.steps["compute_ns"].astype(np.int64)
        untraced_rows = ~traced[rank_col]
        breakdown[rank_col[untraced_rows], step_index[untraced_rows], 0] = \
            compute_col[untraced_rows]

    accounted = breakdown[:, :, : n_cat - 1].sum(axis=2)
    breakdown[:, :, n_cat - 1] = np.maximum(step_ns[None, :] - accounted, 0)

    return RunMetrics(world_size=world, steps=steps, measured=measured,
                      step_start_ns=step_start, step_ns=step_ns, step_tokens=step_tokens,
                      breakdown_ns=breakdown, model_flops=model_flops,
                      peak_tflops=run.peak_tflops, traced=traced)


def _close(a: float, b: float, rel: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def _check_step_compute(run: Run, metrics: RunMetrics) -> list[str]:
    """/steps compute_ns must equal the compute-busy event time of its (rank, step)."""
    if not len(run.steps):
        return []
    step_index = np.searchsorted(metrics.steps, run.steps["step"])
    ranks = run.steps["rank"].astype(np.int64)
    from_events = metrics.breakdown_ns[ranks, step_index, 0]
    stored = run.steps["compute_ns"].astype(np.int64)
    # Rounding: the bincount sums durations in float64, exact below 2^53 ns (104 days).
    # Untraced ranks (a sampled simulation) have no events to check against.
    bad = np.flatnonzero((np.abs(stored - from_events) > 1) & metrics.traced[ranks])
    if not len(bad):
        return []
    i = bad[0]
    return [f"{run.name}: /steps compute_ns disagrees with the compute-busy events in "
            f"{len(bad)} of {len(stored)} rows (first: step {int(run.steps['step'][i])} rank "
            f"{int(run.steps['rank'][i])}: {int(stored[i])} ns stored, {int(from_events[i])} "
            "ns from /events)"]


def check_against_summary(run: Run, metrics: RunMetrics) -> list[str]:
    """Disagreements between the file's own figures (/summary, /steps compute_ns) and the
    recomputation from /events, one line each."""
    if run.summary is None:
        return _check_step_compute(run, metrics)
    problems = []
    recomputed = metrics.as_dict()
    # A run without events (run.trace = false) stores these as unknown (NaN): only the
    # figures of /steps can be checked.
    untraced = len(run.events) == 0
    from_events = {"utilization", "idle_fraction", "exposed_communication_fraction",
                   "waiting_fraction", "mfu"}
    for key in SUMMARY_KEYS:
        if key not in run.summary or (key == "mfu" and metrics.sampled):
            continue
        if untraced and key in from_events:
            continue
        stored = float(run.summary[key])
        mine = float(recomputed[key])
        if not _close(stored, mine):
            problems.append(f"{run.name}: /summary {key} = {stored:.6g} but the events give "
                            f"{mine:.6g}")
    if "traced_ranks" in run.summary and len(run.events):
        stored = int(run.summary["traced_ranks"])
        if stored != int(metrics.traced.sum()):
            problems.append(f"{run.name}: /summary traced_ranks = {stored} but /events has "
                            f"events of {int(metrics.traced.sum())} ranks")
    problems += _check_step_compute(run, metrics)
    for key, stored in run.summary_per_rank.items():
        if untraced:
            break
        mine = getattr(metrics, f"{key}_per_rank")
        if stored.shape != mine.shape or not np.allclose(stored, mine, rtol=1e-6, atol=1e-9,
                                                         equal_nan=True):
            problems.append(f"{run.name}: /summary/{key} per rank {np.round(stored, 4).tolist()}"
                            f" but the events give {np.round(mine, 4).tolist()}")
    return problems


def communication_table(run: Run) -> list[dict]:
    """Per communication kind (pull/push lanes) over measured steps: event count, bytes,
    busy time and rates. Rates are the file's `bytes` column over event duration; the
    aggregate rate is total bytes / total time, the median is over single events."""
    ev = run.events
    if not len(ev):
        return []
    lane = ev["lane"].astype(np.int64)
    steps = ev["step"].astype(np.int64)
    comm = (lane != 0) & (steps >= first_measured_step(run.warmup_steps,
                                                         np.unique(run.steps["step"])))
    if not comm.any():
        return []
    kind = ev["kind"].astype(np.int64)[comm] & 0xFF
    nbytes = ev["bytes"][comm].astype(np.float64)
    duration = (ev["t_end_ns"][comm] - ev["t_start_ns"][comm]).astype(np.float64)
    rows = []
    for code in np.unique(kind):
        of_kind = kind == code
        b, d = nbytes[of_kind], duration[of_kind]
        positive = d > 0
        rate = b[positive] / d[positive]  # bytes per ns = GB/s
        rows.append({
            "kind": run.kind_names[code] if code < len(run.kind_names) else f"kind {code}",
            "events": int(of_kind.sum()),
            "GB": float(b.sum()) / 1e9,
            "time_ms": float(d.sum()) / 1e6,
            "mean_us": float(d.mean()) / 1e3,
            "aggregate_GBps": float(b.sum() / d.sum()) if d.sum() > 0 else math.nan,
            "median_GBps": float(np.median(rate)) if rate.size else math.nan,
        })
    return rows
