"""Tables: one summary row per run, and a speedup comparison against a baseline run."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from .metrics import RunMetrics, check_against_summary, communication_table, compute_metrics
from .runfile import Run

SUMMARY_COLUMNS = ("run", "mode", "balance", "ranks", "workload", "backend", "transport",
                   "device", "tokens/s", "tokens/s/rank", "MFU %", "utilisation %", "idle %",
                   "comm %", "waiting %", "step ms", "steps", "source")


@dataclass
class RunRow:
    run: Run
    metrics: RunMetrics
    figures: dict          # the figures shown: the file's /summary where present
    source: str            # "file" (/summary, recomputation agrees), "recomputed", "file!"
    problems: list[str]    # disagreements between /summary and the recomputation


def summarise(run: Run) -> RunRow:
    metrics = compute_metrics(run)
    figures = metrics.as_dict()
    source = "recomputed"
    problems = check_against_summary(run, metrics)
    if run.summary is not None:
        for key in figures:
            if key in run.summary:
                figures[key] = float(run.summary[key])
        source = "file" if not problems else "file (disagrees)"
    return RunRow(run=run, metrics=metrics, figures=figures, source=source, problems=problems)


def _fmt(value: float, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def summary_cells(row: RunRow, numeric: bool) -> list:
    f = row.figures
    run = row.run
    if numeric:
        values = [f["tokens_per_s"], f["tokens_per_s_per_rank"], 100 * f["mfu"],
                  100 * f["utilization"], 100 * f["idle_fraction"],
                  100 * f["exposed_communication_fraction"], 100 * f["waiting_fraction"],
                  f["step_ms"], int(f["steps_measured"])]
    else:
        values = [_fmt(f["tokens_per_s"], ",.0f"), _fmt(f["tokens_per_s_per_rank"], ",.0f"),
                  _fmt(100 * f["mfu"], ".1f" if 100 * f["mfu"] >= 1 else ".2g"),
                  _fmt(100 * f["utilization"], ".1f"),
                  _fmt(100 * f["idle_fraction"], ".1f"),
                  _fmt(100 * f["exposed_communication_fraction"], ".1f"),
                  _fmt(100 * f["waiting_fraction"], ".1f"), _fmt(f["step_ms"], ".2f"),
                  str(int(f["steps_measured"]))]
    return [run.name, run.mode, run.balance, run.world_size, run.workload_name, run.backend,
            run.attr("transport", "?"), run.device_label, *values, row.source]


def render(columns, rows, fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue()
    text_rows = [[str(c) for c in r] for r in rows]
    numeric = [bool(text_rows) and all(_looks_numeric(r[i]) for r in text_rows)
               for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join(" ---: " if numeric[i] else " --- " for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in text_rows]
    return "\n".join(lines) + "\n"


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("×", "").replace("%", "").strip()
    if stripped == "n/a":
        return True
    try:
        float(stripped)
        return True
    except ValueError:
        return False


def summary_table(rows: list[RunRow], fmt: str = "markdown") -> str:
    return render(SUMMARY_COLUMNS, [summary_cells(r, numeric=(fmt == "csv")) for r in rows], fmt)


# ---- comparison ------------------------------------------------------------------------

def model_of(run: Run):
    """The [model] table of the resolved config (None when the file does not say)."""
    config = run.config
    if not config:
        return None
    return config.get("model")


def comparability(base: RunRow, other: RunRow) -> list[str]:
    """Reasons why `other` cannot be compared with `base`; empty when it can."""
    reasons = []
    if base.run.workload_name != other.run.workload_name:
        reasons.append(f"workload differs ({base.run.workload_name!r} vs "
                       f"{other.run.workload_name!r})")
    base_model, other_model = model_of(base.run), model_of(other.run)
    if base_model is None or other_model is None:
        missing = base.run.name if base_model is None else other.run.name
        reasons.append(f"model unknown ({missing} has no [model] in config_toml)")
    elif base_model != other_model:
        keys = sorted(k for k in set(base_model) | set(other_model)
                      if base_model.get(k) != other_model.get(k))
        detail = ", ".join(f"{k}: {base_model.get(k)!r} vs {other_model.get(k)!r}"
                           for k in keys[:4])
        reasons.append(f"model differs ({detail})")
    base_tokens, other_tokens = int(base.figures["tokens"]), int(other.figures["tokens"])
    if base_tokens != other_tokens:
        reasons.append(f"measured tokens differ ({base_tokens:,} vs {other_tokens:,})")
    return reasons


COMPARE_COLUMNS = ("run", "mode", "balance", "ranks", "tokens/s", "tokens/s/rank", "step ms",
                   "utilisation %", "speedup", "comparable")


def compare_cells(rows: list[RunRow], numeric: bool = False) -> tuple[list[list], list[str]]:
    """Speedup of every run over the first (tokens/s ratio) and the comparability verdicts:
    table cells (one row per run) and one NOT COMPARABLE line per reason."""
    base = rows[0]
    table_rows, notes = [], []
    for row in rows:
        reasons = [] if row is base else comparability(base, row)
        base_rate = base.figures["tokens_per_s"]
        speedup = (row.figures["tokens_per_s"] / base_rate if base_rate > 0
                   else math.nan)  # also NaN when base_rate is NaN (no measured steps)
        if row is base:
            verdict = "baseline"
        else:
            verdict = "yes" if not reasons else "NO"
        for reason in reasons:
            notes.append(f"NOT COMPARABLE: {row.run.name} vs {base.run.name}: {reason}")
        f = row.figures
        if numeric:
            cells = [f["tokens_per_s"], f["tokens_per_s_per_rank"], f["step_ms"],
                     100 * f["utilization"], speedup]
        else:
            cells = [_fmt(f["tokens_per_s"], ",.0f"), _fmt(f["tokens_per_s_per_rank"], ",.0f"),
                     _fmt(f["step_ms"], ".2f"), _fmt(100 * f["utilization"], ".1f"),
                     _fmt(speedup, ".3f") + ("×" if row is not base and math.isfinite(speedup) else "")]
        table_rows.append([row.run.name, row.run.mode, row.run.balance, row.run.world_size,
                           *cells, verdict])
    return table_rows, notes


def compare_table(rows: list[RunRow], fmt: str = "markdown") -> tuple[str, list[str]]:
    cells, notes = compare_cells(rows, numeric=(fmt == "csv"))
    return render(COMPARE_COLUMNS, cells, fmt), notes


BANDWIDTH_COLUMNS = ("kind", "events", "GB", "time ms", "mean µs", "GB/s aggregate",
                     "GB/s median event")


def bandwidth_cells(run: Run, numeric: bool = False) -> list[list]:
    cells = []
    for row in communication_table(run):
        values = [row["GB"], row["time_ms"], row["mean_us"], row["aggregate_GBps"],
                  row["median_GBps"]]
        if not numeric:
            values = [_fmt(values[0], ".3f"), _fmt(values[1], ".2f"), _fmt(values[2], ".1f"),
                      _fmt(values[3], ".2f"), _fmt(values[4], ".2f")]
        cells.append([row["kind"], row["events"], *values])
    return cells


def bandwidth_table(run: Run, fmt: str = "markdown") -> str:
    """Communication per kind over measured steps (rates = `bytes` / event duration)."""
    return render(BANDWIDTH_COLUMNS, bandwidth_cells(run, numeric=(fmt == "csv")), fmt)
