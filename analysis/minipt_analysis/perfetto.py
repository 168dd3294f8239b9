"""Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing).

One process per rank (pid = rank), one thread per lane (tid = lane code), one complete
("X") event per timeline event with microsecond timestamps on the run's global clock.
"""

from __future__ import annotations

import json

import numpy as np

from .runfile import AnalysisError, Run


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
    try:
        out = open(path, "w", encoding="utf-8")
    except OSError as err:
        raise AnalysisError(f"{path}: cannot write trace ({err})") from None
    with out:
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
