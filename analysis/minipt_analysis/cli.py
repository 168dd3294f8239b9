"""minipt-analyze: tables, figures, traces and reports from minipt HDF5 timelines.

Exit codes: 0 success, 1 a check failed (summary --check, compare --strict, validate), 2 bad input (missing,
truncated or foreign file, bad arguments), with one message on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import sys

from .runfile import AnalysisError, Run

PROG = "minipt-analyze"


def _ranks(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rank numbers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one rank")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="one row per run: throughput, MFU, utilisation, idle")
    p.add_argument("runs", nargs="+", metavar="RUN.h5")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a file's /summary disagrees with the recomputation")

    p = sub.add_parser("utilization", help="per-rank stacked bars of where the time went")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png")

    p = sub.add_parser("timeline", help="Gantt chart of one step, one or two runs")
    p.add_argument("runs", nargs="+", metavar="RUN.h5", help="one run, or two to stack")
    p.add_argument("--step", type=int, default=None,
                   help="step to draw (default: first measured step)")
    p.add_argument("--ranks", type=_ranks, default=None, help="e.g. 0,1 (default: all)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png")

    p = sub.add_parser("compare", help="speedup of each run over the first")
    p.add_argument("runs", nargs="+", metavar="RUN.h5")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.add_argument("--strict", action="store_true", help="exit 1 when runs are not comparable")

    p = sub.add_parser("perfetto", help="Chrome trace-event JSON (ui.perfetto.dev; --per-rank: "
                                        "one file per rank for Holistic Trace Analysis)")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument("-o", "--output", required=True, metavar="trace.json|DIR",
                   help="the trace file; with --per-rank a new directory")
    p.add_argument("--per-rank", action="store_true",
                   help="write DIR/rank{R}.trace.json per rank (distributedInfo.rank, "
                        "baseTimeNanoseconds), as HTA's TraceAnalysis(trace_dir=DIR) reads")

    p = sub.add_parser("otf2", help="OTF2 archive (Vampir, Scalasca, otf2-print)")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="new directory for the archive (DIR/traces.otf2)")

    p = sub.add_parser("bandwidth", help="bytes and rates of each communication kind")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")

    p = sub.add_parser("validate", help="check files against the README schema contract")
    p.add_argument("runs", nargs="+", metavar="RUN.h5")

    p = sub.add_parser("report", help="HTML (or .md + PNG) page for every .h5 in DIR, or for "
                       "a suite directory of run/suite/run.py (its figure of merit first)")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("-o", "--output", default=None,
                   help="report file, .html (self-contained) or .md (default DIR/report.html)")
    return parser


def _summary(args) -> int:
    from .tables import summarise, summary_table

    rows = [summarise(Run(path)) for path in args.runs]
    sys.stdout.write(summary_table(rows, args.format))
    problems = [p for row in rows for p in row.problems]
    for problem in problems:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    return 1 if problems and args.check else 0


def _utilization(args) -> int:
    run = Run(args.run)  # before importing matplotlib: a bad file fails fast

    from .figures import save_utilization
    from .metrics import CATEGORIES, compute_metrics
    from .tables import render

    metrics = compute_metrics(run)
    save_utilization(run, args.output, metrics)
    if metrics.steps_measured:
        shares = metrics.breakdown_fraction()
        cells = [[r] + [f"{100 * shares[r, c]:.1f}" for c in range(len(CATEGORIES))]
                 for r in metrics.traced_ranks.tolist()]
        sys.stdout.write(render(["rank"] + [f"{c} %" for c in CATEGORIES], cells, "markdown"))
        if metrics.sampled:
            print(f"events of {len(cells)} of {metrics.world_size} ranks (traced_ranks="
                  f"{len(cells)}, sim.trace_ranks): the breakdown and its fractions cover those;"
                  f" mean utilisation over every rank {100 * metrics.utilization:.1f}%")
    print(f"wrote {args.output}")
    return 0


def _timeline(args) -> int:
    if len(args.runs) > 2:
        raise AnalysisError("timeline draws one run or two stacked runs, got "
                            f"{len(args.runs)} files")
    runs = [Run(p) for p in args.runs]

    from .figures import save_timeline

    save_timeline(runs, args.output, args.step, args.ranks)
    print(f"wrote {args.output}")
    return 0


def _compare(args) -> int:
    from .tables import compare_table, summarise

    if len(args.runs) < 2:
        raise AnalysisError("compare needs at least two runs (the first is the baseline)")
    rows = [summarise(Run(path)) for path in args.runs]
    text, notes = compare_table(rows, args.format)
    sys.stdout.write(text)
    if args.format == "markdown":
        print()
        print("\n".join(notes) if notes else
              f"All runs comparable with {rows[0].run.name}: same workload, model and measured "
              "tokens.")
    else:  # keep CSV parseable: the verdicts go to stderr
        for note in notes:
            print(f"{PROG}: {note}", file=sys.stderr)
    return 1 if notes and args.strict else 0


def _perfetto(args) -> int:
    from .perfetto import write_per_rank_traces, write_trace

    if args.per_rank:
        files = write_per_rank_traces(Run(args.run), args.output)
        print(f"wrote {files} per-rank traces in {args.output}")
        return 0
    count = write_trace(Run(args.run), args.output)
    print(f"wrote {args.output} ({count} events)")
    return 0


def _otf2(args) -> int:
    from .otf2export import write_otf2

    locations, events = write_otf2(Run(args.run), args.output)
    print(f"wrote {args.output}/traces.otf2 ({locations} locations, {events} events)")
    return 0


def _report(args) -> int:
    import os

    from .report import build_report

    output = args.output or os.path.join(args.directory, "report.html")
    skipped = build_report(args.directory, output)
    for reason in skipped:
        print(f"{PROG}: warning: skipped {reason}", file=sys.stderr)
    print(f"wrote {output}")
    return 0


def _bandwidth(args) -> int:
    from .tables import bandwidth_table

    sys.stdout.write(bandwidth_table(Run(args.run), args.format))
    return 0


def _validate(args) -> int:
    from .validate import validate

    failed = 0
    for path in args.runs:
        problems = validate(Run(path))
        if problems:
            failed += 1
            print(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


COMMANDS = {"summary": _summary, "utilization": _utilization, "timeline": _timeline,
            "compare": _compare, "perfetto": _perfetto, "otf2": _otf2, "report": _report,
            "validate": _validate, "bandwidth": _bandwidth}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AnalysisError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # I/O outside the HDF5 reader (e.g. an unwritable output path)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
