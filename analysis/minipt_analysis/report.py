"""A report for every .h5 in a directory: one self-contained HTML page (figures inlined as
base64 PNG) or a Markdown page with its PNGs in a sibling folder."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os

from . import figures
from .metrics import CATEGORIES
from .runfile import AnalysisError, Run, file_written_whole
from .tables import (BANDWIDTH_COLUMNS, COMPARE_COLUMNS, SUMMARY_COLUMNS, RunRow,
                     bandwidth_cells, compare_cells, model_of, render, summarise, summary_cells)


def _comparable_groups(rows: list[RunRow]) -> list[list[RunRow]]:
    """Runs grouped by (workload, model, measured tokens); baseline first (an fsdp run
    when the group has one, since speedups are quoted over fsdp)."""
    groups: dict = {}
    for row in rows:
        key = (row.run.workload_name, json.dumps(model_of(row.run), sort_keys=True, default=str),
               int(row.figures["tokens"]))
        groups.setdefault(key, []).append(row)
    ordered = []
    for members in groups.values():
        members.sort(key=lambda r: (r.run.mode != "fsdp", r.run.name))
        ordered.append(members)
    return ordered


class _Page:
    """Collects sections and writes them as HTML or Markdown."""

    def __init__(self, path: str):
        self.path = path
        self.markdown = path.endswith(".md")
        self.parts: list[str] = []
        self.figure_dir = os.path.splitext(path)[0] + "_files"
        self.figure_count = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"{'#' * level} {text}\n" if self.markdown else
                          f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"{text}\n" if self.markdown else f"<p>{html.escape(text)}</p>")

    def table(self, columns, cells) -> None:
        if self.markdown:
            self.parts.append(render(columns, cells, "markdown"))
            return
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) +
                       "</tr>" for row in cells)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        figures.plt.close(fig)
        self.figure_count += 1
        if self.markdown:
            try:
                os.makedirs(self.figure_dir, exist_ok=True)
            except OSError as err:
                raise AnalysisError(f"{self.figure_dir}: cannot create the report's figure "
                                    f"directory ({err.strerror or err})") from None
            name = f"figure{self.figure_count:02d}.png"
            with file_written_whole(os.path.join(self.figure_dir, name), "report figure",
                                    binary=True) as f:
                f.write(buffer.getvalue())
            rel = os.path.join(os.path.basename(self.figure_dir), name)
            self.parts.append(f"![{caption}]({rel})\n")
        else:
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            self.parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="'
                              f'{html.escape(caption)}"><figcaption>{html.escape(caption)}'
                              "</figcaption></figure>")

    def write(self, title: str) -> None:
        if self.markdown:
            text = f"# {title}\n\n" + "\n".join(self.parts)
        else:
            style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;}"
                     "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
                     "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                     "td:first-child,th:first-child{text-align:left}"
                     "img{max-width:100%}figcaption{color:#555;font-size:90%}")
            text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>{style}</style></head><body>"
                    f"<h1>{html.escape(title)}</h1>" + "\n".join(self.parts) +
                    "</body></html>\n")
        with file_written_whole(self.path, "report") as f:
            f.write(text)


# The fields of suite.json the report uses, with their types (run/suite/run.py writes them).
_SUITE_FIELDS = {"problem": str, "ranks": int, "nodes": int, "repetitions": int,
                 "config": str, "verification": str}
_SUITE_PASSED_FIELDS = {
    "figure_of_merit.value": float, "figure_of_merit.mode": str,
    "figure_of_merit.odc_over_fsdp": float, "figure_of_merit.utilization_fsdp": float,
    "figure_of_merit.utilization_odc": float, "stable": bool, "loss_rtol": float,
    "parameter_norm_rtol": float, "spread_limit": float, "modes": dict}
_SUITE_MODE_FIELDS = {"tokens_per_s_per_rank.median": float, "tokens_per_s_per_rank.min": float,
                      "tokens_per_s_per_rank.max": float, "tokens_per_s_per_rank.spread": float,
                      "stable": bool, "utilization.median": float}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "an object"}


def _check_suite(doc, path: str) -> None:
    """AnalysisError naming suite.json and the field when a field the report uses is
    missing or of the wrong type."""
    def check(obj, fields, prefix=""):
        for dotted, kind in fields.items():
            value = obj
            for part in dotted.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise AnalysisError(f"{path}: field {prefix}{dotted} is missing")
                value = value[part]
            ok = (isinstance(value, bool) if kind is bool else
                  isinstance(value, (int, float)) and not isinstance(value, bool)
                  if kind is float else
                  isinstance(value, int) and not isinstance(value, bool) if kind is int else
                  isinstance(value, kind))
            if not ok:
                raise AnalysisError(f"{path}: field {prefix}{dotted} = {json.dumps(value)[:40]}"
                                    f" is not {_TYPE_NAMES[kind]}")

    if not isinstance(doc, dict):
        raise AnalysisError(f"{path}: not a suite result (a JSON object)")
    check(doc, _SUITE_FIELDS)
    if doc["verification"] != "PASSED" or not doc.get("figure_of_merit"):
        return
    check(doc, _SUITE_PASSED_FIELDS)
    for mode, fields in doc["modes"].items():
        check(fields, _SUITE_MODE_FIELDS, prefix=f"modes.{mode}.")


def _suite_section(page: "_Page", doc: dict) -> None:
    """The figure of merit of a suite directory (run/suite/run.py's suite.json)."""
    page.heading(f"Suite problem {doc['problem']}")
    page.paragraph(f"{doc['ranks']} ranks on {doc['nodes']} node(s), {doc['repetitions']} "
                   f"repetitions of fsdp+micro and odc+mini ({doc['config']}).")
    if doc.get("verification") != "PASSED" or not doc.get("figure_of_merit"):
        # "NOT RUN": a run's launcher failed before minipt started (run/suite/run.py).
        verdict = "LAUNCH FAILED" if doc.get("verification") == "NOT RUN" else "VERIFICATION FAILED"
        page.paragraph(f"{verdict}: {doc.get('failure')}. No figure of merit.")
        return
    fom = doc["figure_of_merit"]
    page.paragraph(f"Figure of merit: {fom['value']:.1f} useful tokens/s per GPU ({fom['mode']}, "
                   f"median){'' if doc['stable'] else ' - UNSTABLE'}; odc/fsdp "
                   f"{fom['odc_over_fsdp']:.3f}x; utilisation fsdp "
                   f"{100 * fom['utilization_fsdp']:.1f}%, odc {100 * fom['utilization_odc']:.1f}%. "
                   f"The modes agree within loss_rtol {doc['loss_rtol']:g} and "
                   f"parameter_norm_rtol {doc['parameter_norm_rtol']:g}.")
    cells = []
    for mode, m in doc["modes"].items():
        t = m["tokens_per_s_per_rank"]
        cells.append([mode, f"{t['median']:.1f}", f"{t['min']:.1f}", f"{t['max']:.1f}",
                      f"{100 * t['spread']:.2f}", f"{100 * doc['spread_limit']:.0f}",
                      "yes" if m["stable"] else "no", f"{100 * m['utilization']['median']:.1f}"])
    page.table(["mode", "median tokens/s/rank", "min", "max", "spread %", "limit %", "stable",
                "median utilisation %"], cells)


def build_report(directory: str, output: str) -> list[str]:
    """Writes the report; returns the files that were skipped, with reasons.

    A suite directory (run/suite/run.py: suite.json, runs/) gets its figure of merit first,
    then the runs of its first repetition."""
    if not os.path.isdir(directory):
        raise AnalysisError(f"{directory}: not a directory")
    suite = None
    if os.path.isfile(os.path.join(directory, "suite.json")):
        suite_path = os.path.join(directory, "suite.json")
        try:
            with open(suite_path, encoding="utf-8") as f:
                suite = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise AnalysisError(f"{suite_path}: not JSON ({err})") from None
        except OSError as err:
            raise AnalysisError(f"{suite_path}: cannot read ({err.strerror or err})") from None
        _check_suite(suite, suite_path)
        runs = os.path.join(directory, "runs")
        paths = sorted(os.path.join(runs, f) for f in os.listdir(runs)
                       if f.endswith("-1.h5")) if os.path.isdir(runs) else []
        if not paths:
            page = _Page(output)
            _suite_section(page, suite)
            page.write(f"minipt suite report: {suite.get('problem')}")
            return []
    else:
        paths = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                       if f.endswith(".h5"))
    if not paths:
        raise AnalysisError(f"{directory}: no .h5 files to report on")
    rows, skipped = [], []
    for path in paths:
        try:
            rows.append(summarise(Run(path)))
        except AnalysisError as err:
            skipped.append(str(err))
    if not rows:
        raise AnalysisError("no readable minipt files:\n  " + "\n  ".join(skipped))

    page = _Page(output)
    if suite is not None:
        _suite_section(page, suite)
        page.heading("Runs of the first repetition")
    page.paragraph(f"{len(rows)} runs from {os.path.abspath(os.path.dirname(paths[0]))}, generated "
                   f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
                   "Figures over measured steps (step >= warmup_steps); utilisation = "
                   "compute-busy time / wall time per rank; tokens/s = measured tokens / sum "
                   "of global step times.")
    for reason in skipped:
        page.paragraph(f"Skipped: {reason}")

    page.heading("Summary")
    page.table(SUMMARY_COLUMNS, [summary_cells(r, numeric=False) for r in rows])
    for row in rows:
        for problem in row.problems:
            page.paragraph(f"Warning: {problem}")

    page.heading("Comparisons (runs with the same workload, model and measured tokens)")
    groups = _comparable_groups(rows)
    compared = False
    for group in groups:
        if len(group) < 2:
            continue
        compared = True
        cells, notes = compare_cells(group)
        base = group[0]
        page.paragraph(f"Workload {base.run.workload_name}, baseline {base.run.name}:")
        page.table(COMPARE_COLUMNS, cells)
        for note in notes:
            page.paragraph(note)
    if not compared:
        page.paragraph("No two runs share workload, model and measured token count, so no "
                       "speedups are quoted.")

    for group in groups:
        base = group[0]
        for other in group[1:]:
            page.figure(figures.timeline_figure([base.run, other.run]),
                        f"{base.run.name} (top) vs {other.run.name} (bottom), first measured "
                        "step, same time axis")

    for row in rows:
        page.heading(f"Run {row.run.name}")
        page.paragraph(row.run.title())
        shares = row.metrics.breakdown_fraction()
        cells = [[r] + [f"{100 * shares[r, c]:.1f}" for c in range(len(CATEGORIES))]
                 for r in row.metrics.traced_ranks.tolist()] if row.metrics.steps_measured \
            else []
        if cells:
            page.table(["rank"] + [f"{c} %" for c in CATEGORIES], cells)
            if row.metrics.sampled:
                page.paragraph(f"Events of {len(cells)} of {row.metrics.world_size} ranks "
                               "(sim.trace_ranks): the breakdown and its fractions cover those.")
        comm = bandwidth_cells(row.run)
        if comm:
            page.paragraph("Communication over measured steps (rates: bytes column / event "
                           "duration):")
            page.table(BANDWIDTH_COLUMNS, comm)
        page.figure(figures.utilization_figure(row.run, row.metrics),
                    f"utilisation of {row.run.name}")
        if len(row.metrics.steps):
            page.figure(figures.timeline_figure([row.run]),
                        f"timeline of {row.run.name}, first measured step")
    page.write(f"minipt report: {os.path.basename(os.path.abspath(directory))}")
    return skipped
