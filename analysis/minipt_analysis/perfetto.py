"""Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing).

One process per rank (pid = rank), one thread per lane (tid = lane code), one complete
("X") event per timeline event with microsecond timestamps on the run's global clock.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .runfile import (AnalysisError, Run, directory_written_whole, file_written_whole,
                      new_output_directory)


def event_name(kind: str, unit: int, microbatch: int) -> str:
    parts = [kind]
    if unit >= 0:
        parts.append(f"u{unit}")
    if microbatch >= 0:
        parts.append(f"mb{microbatch}")
    return " ".join(parts)


def write_trace(run: Run, path: str) -> int:
    """Writes the trace; returns the number of events written."""
    ev = run.events
    n = len(ev)
    devices = run.devices
    hosts = [h for h in (run.attr("hosts", "") or "").split(";") if h]
    # Through a temp renamed when complete: input found bad midway (AnalysisError from a
    # column's check) or a full disk leaves no partial JSON, and an older trace intact.
    with file_written_whole(path, "trace") as out:
        out.write('{"displayTimeUnit":"ms","otherData":')
        out.write(json.dumps({"run": run.name, "title": run.title(),
                              "clock_error_bound_ns": run.attr("clock_error_bound_ns")}))
        out.write(',"traceEvents":[\n')
        meta = []
        for r in range(run.world_size):
            label = f"rank {r}"
            if r < len(hosts):
                label += f" {hosts[r]}"
            if r < len(devices):
                label += f" ({devices[r]})"
            meta.append({"name": "process_name", "ph": "M", "pid": r, "tid": 0,
                         "args": {"name": label}})
            meta.append({"name": "process_sort_index", "ph": "M", "pid": r, "tid": 0,
                         "args": {"sort_index": r}})
            for lane, lane_name in enumerate(run.lane_names):
                meta.append({"name": "thread_name", "ph": "M", "pid": r, "tid": lane,
                             "args": {"name": lane_name}})
                meta.append({"name": "thread_sort_index", "ph": "M", "pid": r, "tid": lane,
                             "args": {"sort_index": lane}})
        out.write(",\n".join(json.dumps(m, separators=(",", ":")) for m in meta))
        separator = ",\n" if meta else "\n"
        if n:
            kinds = ev["kind"].astype(np.int64) & 0xFF
            kind_names = [run.kind_names[k] if k < len(run.kind_names) else f"kind{k}"
                          for k in range(256)]
            categories = [json.dumps(k) for k in kind_names]
            start = ev["t_start_ns"]
            ts = (start / 1e3).tolist()
            dur = ((ev["t_end_ns"] - start) / 1e3).tolist()
            names: dict = {}
            columns = zip(ev["rank"].tolist(), ev["lane"].tolist(), kinds.tolist(),
                          ev["unit"].tolist(), ev["microbatch"].tolist(), ev["step"].tolist(),
                          ts, dur, ev["bytes"].tolist(), ev["tokens"].tolist(),
                          np.nan_to_num(ev["flops"], nan=0.0, posinf=0.0, neginf=0.0).tolist())
            lines = []
            for rank, lane, kind, unit, mb, step, t, d, nbytes, tokens, flops in columns:
                key = (kind, unit, mb)
                name = names.get(key)
                if name is None:
                    name = names[key] = json.dumps(event_name(kind_names[kind], unit, mb))
                lines.append(
                    f'{{"ph":"X","name":{name},"cat":{categories[kind]},"pid":{rank},'
                    f'"tid":{lane},"ts":{t:.3f},"dur":{d:.3f},"args":{{"step":{step},'
                    f'"bytes":{nbytes},"tokens":{tokens},"flops":{flops:.6g}}}}}')
                if len(lines) >= 65536:
                    out.write(separator + ",\n".join(lines))
                    lines, separator = [], ",\n"
            if lines:
                out.write(separator + ",\n".join(lines))
        out.write("\n]}\n")
    return n


# Per-rank traces for Holistic Trace Analysis (HTA reads one file per rank, each with
# distributedInfo.rank and baseTimeNanoseconds). HTA's temporal breakdown counts GPU
# "kernels" (events whose args carry a stream) and splits each rank's span from its first
# kernel to its last into computation kernels, other kernels and idle. Here every event is
# a kernel on stream 7 + lane: compute-busy events (the utilisation numerator) are
# computation kernels; communication, and the compute lane's waits, barriers and
# all-reduces, are named "ncclKernel_<kind> ..." (fsdp's gathers and reduce-scatters,
# odc's gets and accumulates alike), which HTA counts as non-compute.
#
# minipt's utilisation divides by the sum of the measured steps' global windows (first
# rank's start to last rank's end, metrics.py and the C++ summary alike), and those
# windows overlap (a fast rank starts step s+1 before the slowest ends step s) or leave
# gaps (data loading is not timed). So the per-rank traces hold the measured steps only
# (the warm-up is left out, as a profiler schedule leaves it out) on a time axis of their
# own: the measured global windows laid end to end, in step order, every rank's events of
# step s shifted by the same offset (window s starts where window s-1 ends), so the ranks
# stay aligned and a rank's events keep their order and durations; args.t_ns keeps each
# event's start on the run's clock. Every rank has a zero-length "minipt_step_window"
# marker kernel at each window's start and end (rounded outward to a whole microsecond:
# HTA rounds nanosecond timestamps inward), so HTA's span is the sum of the windows on
# every rank and its compute share is minipt's utilisation up to HTA's rounding of each
# kernel to whole microseconds; its non-compute share covers minipt's exposed
# communication and waiting (plus the overlapped transfers), and its idle minipt's
# "other idle".
HTA_STREAM_BASE = 7
_COMPUTE = ("forward", "backward", "recompute", "optimizer", "accumulate_grad")
_KERNEL_PREFIX = {"gather": "ncclKernel_AllGather", "reduce_scatter": "ncclKernel_ReduceScatter",
                  "get": "ncclKernel_Get", "accumulate": "ncclKernel_Accumulate",
                  "wait": "ncclKernel_Wait", "barrier": "ncclKernel_Barrier",
                  "allreduce": "ncclKernel_AllReduce", "replica_reduce": "ncclKernel_AllReduce"}


def _base_time_ns(run: Run) -> int:
    """Unix time of the run's clock origin, approximated as created_utc (when rank 0 wrote
    the file) less the last event's end: the file has no exact origin."""
    from datetime import datetime

    created = run.attr("created_utc", "") or ""
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return 0
    last = int(run.events["t_end_ns"].max()) if len(run.events) else 0
    return max(int(when.timestamp() * 1e9) - last, 0)


def write_per_rank_traces(run: Run, directory: str) -> int:
    """Writes DIR/rank{R}.trace.json for every rank with events: the measured steps on the
    axis described above (DIR must not exist; it is written as a temporary directory beside
    it and renamed when complete). Returns the number of files."""
    import os

    directory = new_output_directory(directory)
    from .metrics import compute_metrics

    ev = run.events
    kinds = ev["kind"].astype(np.int64) & 0xFF if len(ev) else np.zeros(0, np.int64)
    kind_names = [run.kind_names[k] if k < len(run.kind_names) else f"kind{k}"
                  for k in range(256)]
    # The measured global step windows, laid end to end: offset[i] is where window i
    # starts on the traces' axis; shift[i] moves a run-clock time of step i onto it.
    m = compute_metrics(run)
    measured = np.flatnonzero(m.measured)
    lengths = m.step_ns[measured]
    if not len(measured):
        raise AnalysisError(f"{run.path}: no steps in /steps: no step windows to write")
    offset = (np.cumsum(lengths) - lengths).astype(np.int64)
    shift = np.full(len(m.steps), np.iinfo(np.int64).min, dtype=np.int64)
    shift[measured] = offset - m.step_start_ns[measured]
    first_start = int(m.step_start_ns[measured[0]])
    origin = _base_time_ns(run)
    base = origin + first_start if origin else 0  # Unix time of the axis' 0
    backend = "nccl" if run.attr("transport", "") in ("nccl", "ipc") else "mpi"
    ranks = sorted(set(ev["rank"].tolist())) if len(ev) else []
    step_index = np.minimum(np.searchsorted(m.steps, ev["step"]), len(m.steps) - 1)
    event_shift = np.where(m.steps[step_index] == ev["step"], shift[step_index],
                           np.iinfo(np.int64).min)
    markers = []
    for i, s, length in zip(measured.tolist(), offset.tolist(), lengths.tolist()):
        step = int(m.steps[i])
        markers.append((f"minipt_step_window step {step} start", step, math.floor(s / 1e3)))
        markers.append((f"minipt_step_window step {step} end", step,
                        math.ceil((s + length) / 1e3)))
    with directory_written_whole(directory) as tmp:
        rank_col = ev["rank"] if len(ev) else np.zeros(0, np.int32)
        for r in ranks:
            # Events of the measured steps (none of the warm-up or of steps /steps lacks).
            mine = np.flatnonzero((rank_col == r) & (event_shift != np.iinfo(np.int64).min))
            events = [{"name": "process_name", "ph": "M", "pid": r, "tid": 0,
                       "args": {"name": f"rank {r}"}}]
            stream = HTA_STREAM_BASE
            for name, step, t_us in markers:
                events.append({"ph": "X", "cat": "kernel", "name": name, "pid": r,
                               "tid": stream, "ts": float(t_us), "dur": 0.0,
                               "args": {"step": step, "stream": stream, "device": 0,
                                        "correlation": -1}})
            for i in mine.tolist():
                kind = kind_names[kinds[i]]
                lane = int(ev["lane"][i])
                t_run = int(ev["t_start_ns"][i])
                t0 = t_run + int(event_shift[i])
                dur = int(ev["t_end_ns"][i]) - t_run
                name = event_name(kind, int(ev["unit"][i]), int(ev["microbatch"][i]))
                args = {"step": int(ev["step"][i]), "bytes": int(ev["bytes"][i]),
                        "t_ns": t_run}
                if kind in _COMPUTE or kind in _KERNEL_PREFIX:
                    if kind in _KERNEL_PREFIX:
                        name = f"{_KERNEL_PREFIX[kind]} {name}"
                    args.update(stream=HTA_STREAM_BASE + lane, device=0, correlation=-1)
                    cat, tid = "kernel", HTA_STREAM_BASE + lane
                else:
                    cat, tid = "cpu_op", 0
                events.append({"ph": "X", "cat": cat, "name": name, "pid": r, "tid": tid,
                               "ts": t0 / 1e3, "dur": dur / 1e3, "args": args})
            doc = {"schemaVersion": 1, "baseTimeNanoseconds": base,
                   "distributedInfo": {"backend": backend, "rank": int(r),
                                       "world_size": run.world_size},
                   "displayTimeUnit": "ms",
                   "otherData": {"run": run.name, "steps": [int(m.steps[i]) for i in measured],
                                 "time_axis": "the measured steps' global windows laid end "
                                              "to end; args.t_ns: the run's clock"},
                   "traceEvents": events}
            with file_written_whole(os.path.join(tmp, f"rank{r}.trace.json"), "trace") as out:
                # Default separators: HTA finds the rank with the pattern '"rank":\s+N'.
                json.dump(doc, out)
    return len(ranks)
