"""Waiting for other ranks, split from communication inside fsdp's compute-lane waits.

In fsdp a compute-lane `wait` lasts until the collective it waits for (the unit's
all-gather or reduce-scatter) completes, and a collective cannot complete before the
last rank of its group has posted it. So the part of the wait before the last rank
posted is *waiting for other ranks*, and the rest is *communication*:

1. A collective instance is one (shard group, kind, step, microbatch, unit, occurrence)
   of the gather / reduce_scatter events, where the occurrence counts that rank's earlier
   events of the same (kind, step, microbatch, unit) in start-time order (a unit is
   gathered twice per microbatch: forward and backward). Its post time on a rank is the
   event's `t_start_ns`; the last post is the maximum over the ranks that recorded it.
2. A `wait` (rank, step, microbatch, unit) waits for the gather or reduce_scatter event of
   the same rank, step, microbatch and unit whose `t_end_ns` is nearest the wait's end
   (the earlier-starting one on a tie).
3. waiting = clamp(min(wait end, last post) - wait start, 0, wait duration); the rest of
   the wait is communication.

odc's waits are for one-sided pulls and pushes that the owner does not take part in: they
are communication, and its waiting for other ranks is the barrier. minipt's own
`/summary` and FRACTION lines use the same rule (src/trace/waits.cpp). Ranks without
`/events` (`minipt simulate`'s untraced ranks) post nothing here, so on such files the
waiting share is a lower bound.
"""

from __future__ import annotations

import numpy as np

from .runfile import Run

COLLECTIVE_KINDS = ("gather", "reduce_scatter")


def shard_group_size(run: Run) -> int:
    """Ranks per shard group: parallel.shard from the file's configuration (0: all)."""
    world = max(run.world_size, 1)
    config = run.config or {}
    shard = config.get("parallel", {}).get("shard", 0) if isinstance(config, dict) else 0
    try:
        shard = int(shard)
    except (TypeError, ValueError):
        shard = 0
    return shard if 0 < shard <= world and world % shard == 0 else world


def _group_keys(*columns: np.ndarray) -> np.ndarray:
    """Dense integer id per row of equal-length integer columns."""
    if not len(columns[0]):
        return np.zeros(0, dtype=np.int64)
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1)
    _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return inverse.ravel().astype(np.int64)


def waiting_ns(run: Run) -> np.ndarray:
    """Per /events row: ns of a compute-lane fsdp `wait` spent before the last rank posted
    the collective it waits for; 0 for every other row (and every row of an odc run)."""
    return collective_waits(run).waiting


class CollectiveWaits:
    """The rule above, with what it found: `waiting` per /events row; `coll` the rows of
    fsdp's gather / reduce_scatter events, `instance` their collective instance (dense ids),
    `last_post` and `last_rank` per instance (the rank that posted last, the lowest on a
    tie); `wait_rows` the compute-lane waits paired with a collective row `wait_coll`."""

    def __init__(self, n: int):
        empty = np.zeros(0, dtype=np.int64)
        self.waiting = np.zeros(n, dtype=np.int64)
        self.coll = self.instance = self.last_post = self.last_rank = empty
        self.wait_rows = self.wait_coll = empty


def collective_waits(run: Run) -> CollectiveWaits:
    """Pairs fsdp's waits with their collective instances (module docstring)."""
    ev = run.events
    n = len(ev)
    res = CollectiveWaits(n)
    out = res.waiting
    if n == 0 or run.mode != "fsdp":
        return res
    names = list(run.kind_names)
    kind = ev["kind"].astype(np.int64) & 0xFF
    lane = ev["lane"].astype(np.int64)
    coll_codes = [names.index(k) for k in COLLECTIVE_KINDS if k in names]
    if "wait" not in names or not coll_codes:
        return res
    is_coll = np.isin(kind, coll_codes)
    is_wait = (kind == names.index("wait")) & (lane == 0)
    if not is_coll.any() or not is_wait.any():
        return res
    rank = ev["rank"].astype(np.int64)
    step = ev["step"].astype(np.int64)
    mb = ev["microbatch"].astype(np.int64)
    unit = ev["unit"].astype(np.int64)
    t0 = ev["t_start_ns"].astype(np.int64)
    t1 = ev["t_end_ns"].astype(np.int64)

    # 1. collective instances and their last post
    c = np.flatnonzero(is_coll)
    order = np.lexsort((t1[c], t0[c], unit[c], mb[c], step[c], kind[c], rank[c]))
    c = c[order]
    same_key = _group_keys(rank[c], kind[c], step[c], mb[c], unit[c])
    starts = np.r_[True, same_key[1:] != same_key[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(c)), 0))
    occurrence = np.arange(len(c)) - run_start
    group = rank[c] // shard_group_size(run)
    instance = _group_keys(group, kind[c], step[c], mb[c], unit[c], occurrence)
    last_post = np.full(int(instance.max()) + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_post, instance, t0[c])
    post_of_coll = np.zeros(n, dtype=np.int64)
    post_of_coll[c] = last_post[instance]
    # The rank that posted last (its post equals the instance's last; lowest rank on a tie).
    is_last = t0[c] == last_post[instance]
    last_rank = np.full(len(last_post), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(last_rank, instance[is_last], rank[c][is_last])
    res.coll, res.instance, res.last_post, res.last_rank = c, instance, last_post, last_rank

    # 2. pair each wait with its collective: same (rank, step, microbatch, unit), nearest end
    w = np.flatnonzero(is_wait)
    both = np.concatenate([c, w])
    key = _group_keys(rank[both], step[both], mb[both], unit[both])
    c_key, w_key = key[: len(c)], key[len(c):]
    by_key = np.lexsort((t0[c], c_key))  # candidates of one key, earlier start first
    c_sorted, c_key_sorted = c[by_key], c_key[by_key]
    lo = np.searchsorted(c_key_sorted, w_key, side="left")
    hi = np.searchsorted(c_key_sorted, w_key, side="right")
    best = np.full(len(w), -1, dtype=np.int64)
    best_gap = np.full(len(w), np.iinfo(np.int64).max, dtype=np.int64)
    width = int((hi - lo).max()) if len(w) else 0
    for j in range(width):
        cand = lo + j
        valid = cand < hi
        idx = c_sorted[np.minimum(cand, len(c_sorted) - 1)]
        gap = np.abs(t1[idx] - t1[w])
        better = valid & (gap < best_gap)
        best = np.where(better, idx, best)
        best_gap = np.where(better, gap, best_gap)

    # 3. the part of the wait before the last post
    paired = best >= 0
    wp, bp = w[paired], best[paired]
    duration = t1[wp] - t0[wp]
    out[wp] = np.clip(np.minimum(t1[wp], post_of_coll[bp]) - t0[wp], 0, duration)
    res.wait_rows, res.wait_coll = wp, bp
    return res
