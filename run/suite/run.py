#!/usr/bin/env python3
"""Runs one standard problem of inputs/suite/ under the suite's run rules.

    run/suite/run.py small [--out DIR] [--minipt BIN] [--launcher CMD] [--set KEY=VALUE ...]

For every repetition (at least rules.min_repetitions of inputs/suite/suite.toml, default
the problem's `repetitions`) it runs the problem in fsdp mode (LB-Micro) and then in odc
mode (LB-Mini) on the same ranks, checks that both ended with VERIFICATION PASSED and that
they agree (final loss and parameter norm within the problem's loss_rtol and
parameter_norm_rtol), and records tokens/s per rank and utilisation. It writes
DIR/suite.json and DIR/report.md (DIR/runs/ holds every run's .h5, .json and .log).

Figure of merit: the median over repetitions of the useful tokens/s per GPU (rank) of the
faster mode, with the odc/fsdp ratio of the medians and each mode's median utilisation. A
mode whose spread ((max - min) / median) exceeds the problem's spread_limit is marked
unstable (the result is reported, and flagged).

Exit codes: 0 the problem ran and verified (stable or not: see "stable" in suite.json);
1 a run failed or the modes disagree (suite.json and report.md say why, with no figure of
merit; the remaining runs are not started); 2 bad input (unknown problem, too few
repetitions, a launcher or executable that cannot be found), one message naming it.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))


def suite_dir():
    """inputs/suite of the source tree, or share/minipt/inputs/suite of an install."""
    for d in (os.path.join(HERE, "..", "..", "inputs", "suite"),
              os.path.join(HERE, "..", "inputs", "suite")):
        if os.path.isfile(os.path.join(d, "suite.toml")):
            return os.path.realpath(d)
    raise SystemExit("run/suite/run.py: error: no inputs/suite/suite.toml beside this script")


def default_minipt():
    root = os.path.realpath(os.path.join(HERE, "..", ".."))
    for c in (os.path.join(root, "build", "cuda", "src", "minipt"),
              os.path.join(root, "build", "cpu", "src", "minipt"),
              os.path.join(HERE, "..", "..", "..", "bin", "minipt")):
        if os.access(c, os.X_OK):
            return os.path.realpath(c)
    return shutil.which("minipt")


class BadInput(Exception):
    pass


def load_problem(name):
    d = suite_dir()
    with open(os.path.join(d, "suite.toml"), "rb") as f:
        suite = tomllib.load(f)
    problems = suite.get("problem", {})
    if name not in problems:
        raise BadInput("problem: unknown problem '%s' (inputs/suite/suite.toml has: %s)" %
                       (name, ", ".join(sorted(problems))))
    p = dict(problems[name])
    p["name"] = name
    p["config"] = os.path.join(d, p["config"])
    p["min_repetitions"] = suite.get("rules", {}).get("min_repetitions", 5)
    return p


def spread_stats(values):
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {"median": med, "min": lo, "max": hi,
            "spread": (hi - lo) / med if med > 0 else None, "values": values}


def relative_difference(a, b):
    if a is None or b is None:
        return None
    return abs(a - b) / abs(a) if a != 0 else abs(b)


def run_one(args, problem, mode, rep, runs_dir):
    scheme = "micro" if mode == "fsdp" else "mini"
    out = os.path.join(runs_dir, "%s-%d.h5" % (mode, rep))
    launcher = [w.replace("{ranks}", str(problem["ranks"])) for w in shlex.split(args.launcher)]
    cmd = launcher + [args.minipt, "run", "--config", problem["config"]]
    for kv in args.set + (args.set_odc if mode == "odc" else []):
        cmd += ["--set", kv]
    cmd += ["--set", 'run.mode="%s"' % mode, "--set", 'balance.scheme="%s"' % scheme,
            "--set", 'run.name="suite-%s-%s-%d"' % (problem["name"], mode, rep), "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    with open(os.path.join(runs_dir, "%s-%d.log" % (mode, rep)), "w") as f:
        f.write("$ %s\n%s%s" % (shlex.join(cmd), proc.stdout, proc.stderr))
    result = {"mode": mode, "repetition": rep, "exit_code": proc.returncode, "h5": out}
    verdict = [l for l in proc.stdout.splitlines() if l.startswith("VERIFICATION ")]
    result["verification"] = verdict[-1] if verdict else None
    if proc.returncode != 0 or verdict != ["VERIFICATION PASSED"]:
        tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or [""])[-1]
        result["error"] = "%s run %d exited %d (%s): %s" % (
            mode, rep, proc.returncode, result["verification"] or "no VERIFICATION line", tail)
        return result
    with open(out[:-3] + ".json") as f:
        j = json.load(f)
    s, v = j["summary"], j["verification"]
    result.update(tokens_per_s_per_rank=s["tokens_per_s_per_rank"], tokens_per_s=s["tokens_per_s"],
                  utilization=s["utilization"], step_ms=s["step_ms"], tokens=s["tokens"],
                  final_loss=v["final_loss"], parameter_norm=v["parameter_norm"],
                  world_size=j["world_size"], git_revision=j["git_revision"],
                  provenance=j["provenance"])
    return result


def agreement(problem, fsdp, odc):
    """'' when the two runs agree within the problem's tolerances, else what differs."""
    checks = [("final_loss", "loss_rtol"), ("parameter_norm", "parameter_norm_rtol")]
    for key, tol in checks:
        d = relative_difference(fsdp[key], odc[key])
        if d is None or d > problem[tol]:
            return ("repetition %d: %s differs: fsdp %r, odc %r (relative difference %s > %s = %g)"
                    % (fsdp["repetition"], key, fsdp[key], odc[key],
                       "undefined" if d is None else "%.3g" % d, tol, problem[tol]))
    if fsdp["tokens"] != odc["tokens"]:
        return "repetition %d: the modes measured different token counts (%d, %d)" % (
            fsdp["repetition"], fsdp["tokens"], odc["tokens"])
    return ""


def summarise(problem, runs, failure, reps):
    doc = {"problem": problem["name"], "config": problem["config"], "ranks": problem["ranks"],
           "nodes": problem["nodes"], "repetitions": reps,
           "spread_limit": problem["spread_limit"], "loss_rtol": problem["loss_rtol"],
           "parameter_norm_rtol": problem["parameter_norm_rtol"],
           "verification": "FAILED" if failure else "PASSED", "failure": failure or None,
           "runs": [{k: v for k, v in r.items() if k != "provenance"} for r in runs]}
    first = next((r for r in runs if "provenance" in r), None)
    doc["provenance"] = first["provenance"] if first else None
    if failure:
        doc["figure_of_merit"] = None
        return doc
    modes = {}
    for mode in ("fsdp", "odc"):
        rs = [r for r in runs if r["mode"] == mode]
        tps = spread_stats([r["tokens_per_s_per_rank"] for r in rs])
        modes[mode] = {"tokens_per_s_per_rank": tps,
                       "utilization": spread_stats([r["utilization"] for r in rs]),
                       "stable": tps["spread"] is not None and tps["spread"] <= problem["spread_limit"]}
    doc["modes"] = modes
    faster = max(modes, key=lambda m: modes[m]["tokens_per_s_per_rank"]["median"])
    doc["figure_of_merit"] = {
        "name": "useful tokens/s per GPU (rank), median over repetitions, faster mode",
        "value": modes[faster]["tokens_per_s_per_rank"]["median"], "mode": faster,
        "odc_over_fsdp": modes["odc"]["tokens_per_s_per_rank"]["median"] /
        modes["fsdp"]["tokens_per_s_per_rank"]["median"],
        "utilization_fsdp": modes["fsdp"]["utilization"]["median"],
        "utilization_odc": modes["odc"]["utilization"]["median"]}
    doc["stable"] = all(m["stable"] for m in modes.values())
    return doc


def markdown(doc):
    lines = ["# minipt suite: problem `%s`" % doc["problem"], "",
             "%d ranks on %d node(s), %d repetitions of fsdp+micro and odc+mini, configuration "
             "`%s`." % (doc["ranks"], doc["nodes"], doc["repetitions"], doc["config"]), ""]
    prov = doc.get("provenance") or {}
    if prov:
        lines += ["minipt %s (%s), %s, hosts %s." % (
            prov.get("minipt_version"), prov.get("git_revision"),
            (prov.get("software") or {}).get("mpi_library", "?").split(",")[0],
            ", ".join(sorted(set(prov.get("hosts", []))))), ""]
    if doc["verification"] != "PASSED":
        lines += ["**VERIFICATION FAILED**: %s" % doc["failure"], "",
                  "No figure of merit is reported.", ""]
        return "\n".join(lines)
    fom = doc["figure_of_merit"]
    lines += ["**Figure of merit: %.1f useful tokens/s per GPU** (%s, median of %d)%s; "
              "odc/fsdp %.3fx; utilisation fsdp %.1f%%, odc %.1f%%." % (
                  fom["value"], fom["mode"], doc["repetitions"],
                  "" if doc["stable"] else " — **UNSTABLE**", fom["odc_over_fsdp"],
                  100 * fom["utilization_fsdp"], 100 * fom["utilization_odc"]), "",
              "Verification: the fsdp and odc runs of every repetition agree (final loss within "
              "%g, parameter norm within %g, relative)." % (doc["loss_rtol"],
                                                            doc["parameter_norm_rtol"]), "",
              "| mode | median tokens/s/rank | min | max | spread | limit | stable | median utilisation |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for mode, m in doc["modes"].items():
        t = m["tokens_per_s_per_rank"]
        lines.append("| %s | %.1f | %.1f | %.1f | %.2f%% | %.0f%% | %s | %.1f%% |" % (
            mode, t["median"], t["min"], t["max"], 100 * t["spread"], 100 * doc["spread_limit"],
            "yes" if m["stable"] else "**no**", 100 * m["utilization"]["median"]))
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("problem", help="small, medium or large (inputs/suite/suite.toml)")
    ap.add_argument("--out", help="output directory (default out/suite/PROBLEM)")
    ap.add_argument("--repetitions", type=int, help="repetitions (default: the problem's; at "
                    "least rules.min_repetitions)")
    ap.add_argument("--minipt", default=default_minipt(), help="the executable (default: "
                    "build/{cuda,cpu}/src/minipt, else the install's bin/minipt, else PATH)")
    ap.add_argument("--launcher", default="mpirun -n {ranks}",
                    help="command before minipt; {ranks} is replaced (default: %(default)s; "
                    "under Slurm e.g. 'srun --mpi=pmix')")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for both modes (results then are not the standard problem's)")
    ap.add_argument("--set-odc", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the odc runs only: a deliberate difference between the "
                    "modes, which the verification must catch (tests/python/test_suite.py)")
    args = ap.parse_args(argv)
    try:
        problem = load_problem(args.problem)
        reps = args.repetitions if args.repetitions is not None else problem["repetitions"]
        if reps < problem["min_repetitions"]:
            raise BadInput("--repetitions: %d is below the rules' minimum of %d" %
                           (reps, problem["min_repetitions"]))
        if not args.minipt or not os.access(args.minipt, os.X_OK):
            raise BadInput("--minipt: no executable '%s'" % args.minipt)
        launcher0 = shlex.split(args.launcher)[:1]
        if launcher0 and shutil.which(launcher0[0]) is None:
            raise BadInput("--launcher: '%s' not found" % launcher0[0])
    except BadInput as e:
        print("run/suite/run.py: error: %s" % e, file=sys.stderr)
        return 2
    out = args.out or os.path.join("out", "suite", problem["name"])
    runs_dir = os.path.join(out, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    runs, failure = [], ""
    for rep in range(1, reps + 1):
        pair = {}
        for mode in ("fsdp", "odc"):
            r = run_one(args, problem, mode, rep, runs_dir)
            runs.append(r)
            pair[mode] = r
            if "error" in r:
                failure = r["error"]
                break
        if not failure:
            failure = agreement(problem, pair["fsdp"], pair["odc"])
        print("repetition %d/%d: %s" % (rep, reps, failure or "fsdp %.1f, odc %.1f tokens/s/rank" % (
            pair["fsdp"]["tokens_per_s_per_rank"], pair["odc"]["tokens_per_s_per_rank"])), flush=True)
        if failure:
            break
    doc = summarise(problem, runs, failure, reps)
    for name, text in (("suite.json", json.dumps(doc, indent=2) + "\n"), ("report.md", markdown(doc))):
        tmp = os.path.join(out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))
    if failure:
        print("SUITE %s VERIFICATION FAILED: %s" % (problem["name"], failure))
        return 1
    fom = doc["figure_of_merit"]
    print("SUITE %s figure_of_merit=%.1f mode=%s odc_over_fsdp=%.4f utilization_fsdp=%.4f "
          "utilization_odc=%.4f stable=%s" % (problem["name"], fom["value"], fom["mode"],
                                             fom["odc_over_fsdp"], fom["utilization_fsdp"],
                                             fom["utilization_odc"], str(doc["stable"]).lower()))
    for mode, m in doc["modes"].items():
        t = m["tokens_per_s_per_rank"]
        print("SUITE %s %s median=%.1f min=%.1f max=%.1f spread=%.4f limit=%.4f stable=%s" % (
            problem["name"], mode, t["median"], t["min"], t["max"], t["spread"],
            problem["spread_limit"], str(m["stable"]).lower()))
    print("wrote %s and %s" % (os.path.join(out, "suite.json"), os.path.join(out, "report.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
