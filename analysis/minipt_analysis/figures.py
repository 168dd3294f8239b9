"""Figures: per-rank utilisation breakdown and per-step Gantt timelines.

Both draw one PolyCollection per colour (rectangles built as vertex arrays with numpy),
never one artist per bar or event, so a million-event file draws in about a second.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display needed (CI, batch nodes)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from .metrics import CATEGORIES, RunMetrics, compute_metrics  # noqa: E402
from .runfile import AnalysisError, Run, file_written_whole  # noqa: E402

CATEGORY_COLORS = ("#3a923a", "#d62728", "#9467bd", "#c7c7c7")

KIND_COLORS = {
    "forward": "#1f77b4",
    "backward": "#ff7f0e",
    "recompute": "#aec7e8",
    "optimizer": "#2ca02c",
    "accumulate_grad": "#98df8a",
    "replica_reduce": "#c5b0d5",
    "gather": "#17becf",
    "get": "#20c997",
    "reduce_scatter": "#e377c2",
    "accumulate": "#ae5fd9",
    "wait": "#d62728",
    "barrier": "#7f7f7f",
    "allreduce": "#8c564b",
}
FALLBACK_COLOR = "#bcbd22"


def _rectangles(x0, x1, y0, y1) -> np.ndarray:
    """Vertices (n, 4, 2) of axis-aligned rectangles."""
    x0, x1, y0, y1 = (np.broadcast_to(np.asarray(a, dtype=np.float64), np.shape(x0))
                      for a in (x0, x1, y0, y1))
    verts = np.empty((len(x0), 4, 2))
    verts[:, 0, 0], verts[:, 0, 1] = x0, y0
    verts[:, 1, 0], verts[:, 1, 1] = x0, y1
    verts[:, 2, 0], verts[:, 2, 1] = x1, y1
    verts[:, 3, 0], verts[:, 3, 1] = x1, y0
    return verts


def _add_rectangles(ax, x0, x1, y0, y1, color, **kwargs) -> None:
    if len(x0) == 0:
        return
    ax.add_collection(PolyCollection(_rectangles(x0, x1, y0, y1), facecolors=color,
                                     **kwargs))


def time_unit(span_ns: float) -> tuple[str, float]:
    """Display unit for a time span: ms up to 20 s, seconds beyond."""
    return ("s", 1e9) if span_ns > 20e9 else ("ms", 1e6)


def _save(fig, path: str) -> None:
    """Writes the figure through a temp beside `path` (runfile.file_written_whole), in the
    format its extension names (PNG without one)."""
    extension = os.path.splitext(path)[1][1:].lower() or None
    try:
        if extension is not None and extension not in fig.canvas.get_supported_filetypes():
            raise ValueError(f"Format {extension!r} is not supported (supported formats: "
                             f"{', '.join(sorted(fig.canvas.get_supported_filetypes()))})")
        with file_written_whole(path, "figure", binary=True) as out:
            fig.savefig(out, format=extension, dpi=110)
    except ValueError as err:  # matplotlib: a file extension it has no writer for
        raise AnalysisError(f"{path}: cannot write figure ({err})") from None
    finally:
        plt.close(fig)


# ---- utilisation -------------------------------------------------------------------------

def utilization_figure(run: Run, metrics: RunMetrics | None = None):
    """Left: share of wall per rank over measured steps. Right: time per step and rank."""
    metrics = metrics or compute_metrics(run)
    # The ranks drawn: those with events (all but in a sampled simulation, whose untraced
    # ranks have /steps only and would show as idle), side by side; ticks name them.
    shown = metrics.traced_ranks
    world = len(shown)
    n_steps = len(metrics.steps)
    n_cat = len(CATEGORIES)

    fig, (ax_all, ax_steps) = plt.subplots(
        1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2.6]})
    sample = (f"\nevents of {world} of {metrics.world_size} ranks (sim.trace_ranks): the "
              "breakdown covers those; utilisation is over every rank" if metrics.sampled
              else "")
    fig.suptitle(f"Utilisation — {run.title()}{sample}", fontsize=11)

    # Overall, in % of wall time (measured steps only).
    shares = 100 * metrics.breakdown_fraction()[shown] if metrics.steps_measured else \
        np.zeros((world, n_cat))
    ranks = np.arange(world)
    bottom = np.zeros(world)
    for c in range(n_cat):
        _add_rectangles(ax_all, ranks - 0.4, ranks + 0.4, bottom, bottom + shares[:, c],
                        CATEGORY_COLORS[c], edgecolors="none")
        bottom = bottom + shares[:, c]
    if world <= 16:
        for r in ranks:
            ax_all.text(r, min(shares[r, 0], 100) / 2, f"{shares[r, 0]:.1f}%", ha="center",
                        va="center", fontsize=8, color="white", fontweight="bold",
                        rotation=0 if world <= 4 else 90)
    ax_all.set_xlim(-0.6, world - 0.4)
    ax_all.set_ylim(0, 100)
    ax_all.set_xlabel("rank")
    ax_all.set_ylabel("share of wall time (%)")
    ticks = ranks if world <= 16 else np.linspace(0, world - 1, 9).round().astype(int)
    ax_all.set_xticks(ticks)
    if metrics.sampled:
        ax_all.set_xticklabels([str(int(shown[t])) for t in ticks])
    measured = metrics.steps_measured
    util = metrics.utilization
    if measured:
        other = float(shares[:, n_cat - 1].mean())
        ax_all.set_title(
            f"overall, {measured} measured step{'s' if measured != 1 else ''}: mean "
            f"utilisation {100 * util:.1f}%\nidle {100 * (1 - util):.1f}%: exposed "
            f"communication {100 * metrics.exposed_communication_fraction:.1f}%,\nwaiting "
            f"for ranks {100 * metrics.waiting_fraction:.1f}%, other idle {other:.1f}%",
            fontsize=9)
    else:
        ax_all.set_title("overall: no measured steps", fontsize=10)

    # Per step, absolute time: bars grouped by step, one bar per rank; with too many bars
    # to tell apart, one bar per step holding the mean over ranks.
    span = float(metrics.step_ns.max()) if n_steps else 0.0
    unit, scale = time_unit(span)
    per_rank = world * n_steps <= 240
    if per_rank:
        width = 0.84 / max(world, 1)
        x_center = np.arange(n_steps)[None, :] + (ranks[:, None] - (world - 1) / 2) * width
        x_center = x_center.ravel()  # rank-major, matching breakdown_ns[rank, step]
        values = metrics.breakdown_ns[shown].reshape(world * n_steps, n_cat) / scale
    else:
        width = 0.84
        x_center = np.arange(n_steps, dtype=np.float64)
        values = metrics.breakdown_ns[shown].mean(axis=0) / scale if world else np.zeros(
            (n_steps, n_cat))
    bottom = np.zeros(len(x_center))
    for c in range(n_cat):
        _add_rectangles(ax_steps, x_center - 0.42 * width, x_center + 0.42 * width, bottom,
                        bottom + values[:, c], CATEGORY_COLORS[c], edgecolors="none")
        bottom = bottom + values[:, c]
    warm = np.flatnonzero(~metrics.measured)
    if len(warm):
        ax_steps.axvspan(-0.5, warm.max() + 0.5, color="#000000", alpha=0.08, lw=0)
        ax_steps.text(-0.4, span / scale * 1.09 if span else 0, "shaded: warm-up (not measured)",
                      ha="left", va="top", fontsize=8, color="#555555")
    ax_steps.set_xlim(-0.5, max(n_steps, 1) - 0.5)
    ax_steps.set_ylim(0, span / scale * 1.1 if span > 0 else 1)
    ax_steps.set_xlabel((f"step (bars within a step: ranks {shown[0]}…{shown[-1]} left to "
                         "right)" if world else "step") if per_rank else "step")
    ax_steps.set_ylabel(f"time ({unit})")
    ax_steps.set_title("per step: global step time split by what each rank did" if per_rank
                       else f"per step: global step time split by what the ranks did "
                       f"(mean over {world} ranks)", fontsize=10)
    ax_steps.xaxis.set_major_locator(MaxNLocator(nbins=16, integer=True))
    ax_steps.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _pos: str(int(metrics.steps[int(round(x))]))
        if 0 <= round(x) < n_steps else ""))

    handles = [Patch(color=CATEGORY_COLORS[c], label=label) for c, label in enumerate(
        ("compute (fwd, bwd, recompute, optimizer, grad accumulation)",
         "exposed communication (waits for a transfer, after the last rank posted it)",
         "waiting for other ranks (fsdp: wait before the last rank posted; barrier, allreduce)",
         "other idle (gaps, end of step)"))]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def save_utilization(run: Run, path: str, metrics: RunMetrics | None = None) -> None:
    _save(utilization_figure(run, metrics), path)


# ---- timeline ---------------------------------------------------------------------------

def default_step(run: Run, metrics: RunMetrics) -> int:
    """First measured step, or the first step when every step is warm-up."""
    if len(metrics.steps) == 0:
        raise AnalysisError(f"{run.path}: the file has no steps to draw")
    measured = metrics.steps[metrics.measured]
    return int(measured[0] if len(measured) else metrics.steps[0])


def _shade(color: str, factor: float) -> tuple:
    """Lighter (factor > 0) or darker (factor < 0) variant, to tell adjacent units apart."""
    rgb = np.array(to_rgb(color))
    rgb = rgb + (1 - rgb) * factor if factor > 0 else rgb * (1 + factor)
    return tuple(np.clip(rgb, 0, 1))


def _draw_timeline(ax, run: Run, metrics: RunMetrics, step: int, ranks: list[int],
                   scale: float, kinds_seen: set, label_span: float) -> float:
    """Draw one run's step on `ax`; returns the global step time (ns)."""
    where = np.flatnonzero(metrics.steps == step)
    if len(where) == 0:
        raise AnalysisError(f"{run.path}: no step {step} (steps "
                            f"{int(metrics.steps[0])}..{int(metrics.steps[-1])})")
    origin = int(metrics.step_start_ns[where[0]])
    step_ns = float(metrics.step_ns[where[0]])
    n_lanes = max(len(run.lane_names), 3)
    block = n_lanes + 0.6  # lanes of one rank, plus a gap to the next rank
    row_of_rank = {r: i for i, r in enumerate(ranks)}

    ev = run.events
    selected = ev["step"] == step
    if sorted(ranks) != list(range(run.world_size)):
        selected &= np.isin(ev["rank"], ranks)
    idx = np.flatnonzero(selected)
    rank = ev["rank"][idx].astype(np.int64)
    lane = ev["lane"][idx].astype(np.int64)
    kind = ev["kind"][idx].astype(np.int64) & 0xFF
    unit = ev["unit"][idx].astype(np.int64)
    x0 = (ev["t_start_ns"][idx] - origin) / scale
    x1 = (ev["t_end_ns"][idx] - origin) / scale
    row_lookup = np.full(run.world_size + 1, -1, dtype=np.int64)
    for r, i in row_of_rank.items():
        row_lookup[r] = i
    row = row_lookup[np.clip(rank, 0, run.world_size)]
    # y grows downwards in the figure (inverted axis): rank 0 at the top, compute lane
    # first, then pull, then push.
    lane_height = np.where(lane == 0, 0.8, 0.6)
    y_center = row * block + lane + 0.5
    y0, y1 = y_center - lane_height / 2, y_center + lane_height / 2

    # One collection per (kind, unit parity): adjacent units get two shades of the
    # kind's colour, so layer boundaries stay readable without edge lines.
    for code in np.unique(kind):
        name = run.kind_names[code] if code < len(run.kind_names) else f"kind {code}"
        kinds_seen.add(name)
        color = KIND_COLORS.get(name, FALLBACK_COLOR)
        of_kind = kind == code
        for parity, factor in ((0, 0.0), (1, 0.28)):
            m = of_kind & ((unit & 1) == parity)
            _add_rectangles(ax, x0[m], x1[m], y0[m], y1[m], _shade(color, factor),
                            edgecolors="none")

    # Microbatch boundaries: a black tick across the rank's lanes where each microbatch's
    # first compute event starts, labelled with the microbatch index when there is room.
    mb = ev["microbatch"][idx].astype(np.int64)
    on_compute = (lane == 0) & (mb >= 0)
    if on_compute.any():
        n_mb = int(mb[on_compute].max()) + 1
        key = row[on_compute] * n_mb + mb[on_compute]
        first = np.full(len(ranks) * n_mb, np.inf)
        np.minimum.at(first, key, x0[on_compute])
        has = np.isfinite(first)
        keys = np.flatnonzero(has)
        tick_row, tick_mb = keys // n_mb, keys % n_mb
        ax.vlines(first[has], tick_row * block - 0.05, tick_row * block + n_lanes + 0.05,
                  colors="black", linewidth=0.9)
        if len(ranks) <= 16:
            # Label a tick unless it sits too close to the previous label of its row.
            min_gap = 0.025 * max(label_span, 1e-12)
            last_x = {}
            for x, r, m in sorted(zip(first[has], tick_row, tick_mb), key=lambda t: (t[1], t[0])):
                if x - last_x.get(r, -np.inf) >= min_gap:
                    ax.text(x, r * block - 0.08, f"mb{m}", fontsize=6.5, ha="left",
                            va="bottom", color="black")
                    last_x[r] = x

    if len(idx) == 0:
        ax.text(0.5, 0.5, f"no events in step {step}: the whole step is idle",
                transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#555555")

    # The global step end: everything right of a rank's last event up to here is idle.
    ax.axvline(step_ns / scale, color="black", linestyle="--", linewidth=0.8)

    yticks, ylabels = [], []
    for r, i in row_of_rank.items():
        for lane_index in range(n_lanes):
            yticks.append(i * block + lane_index + 0.5)
            lane_name = (run.lane_names[lane_index] if lane_index < len(run.lane_names)
                         else str(lane_index))
            ylabels.append(f"rank {r} {lane_name}" if lane_index == 0 or len(ranks) <= 8
                           else lane_name)
        if i:
            ax.axhline(i * block - 0.3, color="#dddddd", linewidth=0.6)
    ax.set_yticks(yticks, ylabels, fontsize=7 if len(ranks) <= 8 else 5)
    ax.set_ylim(len(ranks) * block - 0.4, -0.6)
    return step_ns


def timeline_figure(runs: list[Run], step: int | None = None, ranks: list[int] | None = None):
    metrics = [compute_metrics(r) for r in runs]
    steps = [default_step(r, m) if step is None else step for r, m in zip(runs, metrics)]
    rank_lists = []
    for run, m in zip(runs, metrics):
        # Default: every rank with events (a sampled simulation's untraced ranks have none).
        chosen = m.traced_ranks.tolist() if ranks is None else list(ranks)
        bad = [r for r in chosen if r < 0 or r >= run.world_size]
        if bad:
            raise AnalysisError(f"{run.path}: rank(s) {bad} out of range (world_size "
                                f"{run.world_size})")
        rank_lists.append(chosen)
    spans = []
    for m, s in zip(metrics, steps):
        where = np.flatnonzero(m.steps == s)
        spans.append(float(m.step_ns[where[0]]) if len(where) else 0.0)
    unit, scale = time_unit(max(spans) if spans else 0.0)

    # About 1.5 in per rank (three lanes), shrunk so that a panel stays under ~26 in
    # however many ranks it shows.
    heights = [max(1.2, min(1.5 * len(r), 26.0 / len(runs))) + 0.9 for r in rank_lists]
    fig, axes = plt.subplots(len(runs), 1, figsize=(13, sum(heights) + 1.2), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    kinds_seen: set = set()
    for ax, run, m, s, rl in zip(axes[:, 0], runs, metrics, steps, rank_lists):
        step_ns = _draw_timeline(ax, run, m, s, rl, scale, kinds_seen, max(spans) / scale)
        ax.set_title(f"{run.title()} — step {s}, {step_ns / scale:.2f} {unit}", fontsize=10,
                     loc="left")
        ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
    top = max(spans) / scale if max(spans) > 0 else 1.0
    axes[-1, 0].set_xlim(0, top * 1.01)
    axes[-1, 0].set_xlabel(f"time since the step's start ({unit}); dashed line: step end "
                           "(slowest rank); black ticks: microbatch starts")
    order = [k for k in KIND_COLORS if k in kinds_seen] + sorted(kinds_seen - set(KIND_COLORS))
    handles = [Patch(color=KIND_COLORS.get(k, FALLBACK_COLOR), label=k) for k in order]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7),
                   fontsize=8, frameon=False,
                   title="event kind (lighter shade: odd unit, to separate layers)",
                   title_fontsize=8)
    legend_rows = -(-len(handles) // 7) if handles else 0
    fig.tight_layout(rect=(0, (0.35 + 0.22 * legend_rows) / (sum(heights) + 1.2), 1, 1))
    return fig


def save_timeline(runs: list[Run], path: str, step: int | None = None,
                  ranks: list[int] | None = None) -> None:
    _save(timeline_figure(runs, step, ranks), path)
