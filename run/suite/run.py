#!/usr/bin/env python3
"""Runs one standard problem of inputs/suite/ under the suite's run rules.

    run/suite/run.py small [--out DIR] [--copies K] [--minipt BIN] [--launcher CMD]
                           [--set KEY=VALUE ...]

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

Throughput mode (--copies K): every run is started K times at once, each copy its own
launcher job (its own ranks) and DIR/copy-N/ (suite.json, report.md, runs/); each copy is
verified and summarised as above, and the job's figure of merit is the slowest copy's
(procurement scores a machine full of copies by the slowest). DIR/suite.json and
DIR/report.md list every copy.

Launching: the default launcher is Open MPI's `mpirun -n {ranks}`; as root the suite sets
OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM), and with more ranks than cores it adds --oversubscribe,
printing one "launch: ..." line for each (launch.py; other launchers are unchanged). A run
whose launcher never started minipt is a launch failure (verification "NOT RUN"), reported
with its key, its log and the launcher's first error line; a run that failed is reported
with its key, the failing rank and its first error line.

Outputs are written through a temp beside the final name (a fresh name, opened exclusive
and without following links) renamed when complete.

Exit codes: 0 the problem ran and verified (stable or not: see "stable" in suite.json);
1 a run failed to launch or failed, or the modes disagree (suite.json and report.md say
why, with no figure of merit; the remaining runs are not started); 2 bad input (unknown
problem, too few repetitions, a launcher or executable that cannot be found, an --out
that cannot be created or written, or an output that cannot be written, e.g. a full
disk), one message naming it.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import launch  # noqa: E402  (run/suite/launch.py: the Open MPI launch rules)


def _result_reader():
    """run/lib/result (share/minipt/lib/result when installed): the one reader of the runs'
    JSON summaries for the scripts under run/."""
    path = os.path.join(HERE, os.pardir, "lib", "result")
    loader = importlib.machinery.SourceFileLoader("minipt_result", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


result_reader = _result_reader()


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


# Open MPI's generic lines around a failed job: not the error itself.
_BANNER_LINES = ("Primary job", "a non-zero exit code", "mpirun detected that one or more",
                 "mpirun noticed that", "the job to be terminated", "Process name:",
                 "Exit code:", "prterun detected", "prterun noticed")


def first_error_line(stderr, stdout=""):
    """The first line of a failed run's output that says what went wrong: not blank, not
    an Open MPI banner rule (-----) nor its generic "a process exited" text."""
    for line in stderr.splitlines() + stdout.splitlines()[::-1]:
        s = line.strip()
        if not s or set(s) <= set("-=*") or s.startswith(_BANNER_LINES):
            continue
        return s
    return "(no output)"


def failed_rank(stderr):
    """The rank Open MPI names as the first to fail ("Process name: [[J,1],R]"), or None."""
    m = re.search(r"Process name:\s*\[\[\d+,\d+\],(\d+)\]", stderr)
    if m:
        return int(m.group(1))
    m = re.search(r"\brank (\d+)\b", stderr)
    return int(m.group(1)) if m else None


def launched(proc_stdout, stderr):
    """Whether the launcher started the ranks (they printed, or Open MPI names one)."""
    return bool(proc_stdout.strip()) or "Process name:" in stderr or any(
        l.startswith("minipt") for l in stderr.splitlines())


class Run:
    """One minipt run of the suite: started by start(), collected by finish()."""

    def __init__(self, args, problem, mode, rep, runs_dir, copy=None):
        self.mode, self.rep, self.copy, self.runs_dir = mode, rep, copy, runs_dir
        self.key = "%s-%d" % (mode, rep) if copy is None else "copy%d/%s-%d" % (copy, mode, rep)
        scheme = "micro" if mode == "fsdp" else "mini"
        self.out = os.path.join(runs_dir, "%s-%d.h5" % (mode, rep))
        self.log = os.path.join(runs_dir, "%s-%d.log" % (mode, rep))
        name = "suite-%s-%s-%d" % (problem["name"], mode, rep)
        if copy is not None:
            name += "-copy%d" % copy
        launch_cmd, self.env = args.launchers[(copy or 1) - 1]
        cmd = list(launch_cmd) + [args.minipt, "run", "--config", problem["config"]]
        for kv in args.set + (args.set_odc if mode == "odc" else []):
            cmd += ["--set", kv]
        cmd += ["--set", 'run.mode="%s"' % mode, "--set", 'balance.scheme="%s"' % scheme,
                "--set", 'run.name="%s"' % name, "--out", self.out]
        self.cmd = cmd
        self._stdout = tempfile.TemporaryFile(mode="w+")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        try:
            self.proc = subprocess.Popen(cmd, stdout=self._stdout, stderr=self._stderr,
                                         env=self.env)
        except OSError as e:
            self.proc = None
            self._start_error = "%s: %s" % (cmd[0], e.strerror)

    def finish(self):
        """The run's result: a dict with "error" (and "launch_failure") when it failed."""
        if self.proc is None:
            rc, stdout, stderr = 127, "", self._start_error
        else:
            rc = self.proc.wait()
            self._stdout.seek(0)
            self._stderr.seek(0)
            stdout, stderr = self._stdout.read(), self._stderr.read()
        self._stdout.close()
        self._stderr.close()
        write_atomic(self.log, "$ %s\n%s%s" % (shlex.join(self.cmd), stdout, stderr))
        result = {"mode": self.mode, "repetition": self.rep, "exit_code": rc, "h5": self.out,
                  "log": self.log}
        if self.copy is not None:
            result["copy"] = self.copy
        verdict = [l for l in stdout.splitlines() if l.startswith("VERIFICATION ")]
        result["verification"] = verdict[-1] if verdict else None
        if rc != 0 and not launched(stdout, stderr):
            result["launch_failure"] = True
            result["error"] = "%s: launch failure (the launcher exited %d before minipt " \
                "started; see %s): %s" % (self.key, rc, self.log, first_error_line(stderr))
            return result
        if rc != 0 or verdict != ["VERIFICATION PASSED"]:
            rank = failed_rank(stderr)
            what = ("exited %d" % rc) if rc != 0 else "exited 0"
            result["error"] = "%s: %s%s (%s; see %s): %s" % (
                self.key, "rank %d " % rank if rank is not None and rc != 0 else "", what,
                result["verification"] or "no VERIFICATION line", self.log,
                first_error_line(stderr, stdout))
            return result
        try:
            j = result_reader.load(self.out[:-3] + ".json")
            s, v = result_reader.value(j, "summary"), result_reader.value(j, "verification")
            result.update(tokens_per_s_per_rank=s["tokens_per_s_per_rank"],
                          tokens_per_s=s["tokens_per_s"], utilization=s["utilization"],
                          step_ms=s["step_ms"], tokens=s["tokens"],
                          final_loss=v["final_loss"], parameter_norm=v["parameter_norm"],
                          world_size=j["world_size"], git_revision=j["git_revision"],
                          provenance=j["provenance"])
        except (result_reader.ResultError, KeyError, TypeError) as e:
            result["error"] = "%s: cannot read its summary %s: %s" % (
                self.key, self.out[:-3] + ".json", e)
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


def verdict_of(runs, failure):
    """PASSED; FAILED (a run failed or the modes disagree); NOT RUN (a launch failure: the
    launcher never started minipt, so nothing was verified)."""
    if not failure:
        return "PASSED"
    return "NOT RUN" if any(r.get("launch_failure") for r in runs) else "FAILED"


def summarise(problem, runs, failure, reps):
    doc = {"problem": problem["name"], "config": problem["config"], "ranks": problem["ranks"],
           "nodes": problem["nodes"], "repetitions": reps,
           "spread_limit": problem["spread_limit"], "loss_rtol": problem["loss_rtol"],
           "parameter_norm_rtol": problem["parameter_norm_rtol"],
           "verification": verdict_of(runs, failure), "failure": failure or None,
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
        lines += ["**%s**: %s" % ("LAUNCH FAILED" if doc["verification"] == "NOT RUN" else
                                  "VERIFICATION FAILED", doc["failure"]), "",
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


class OutputError(Exception):
    """A file of the suite's output cannot be written: exit 2, naming the path."""


def write_atomic(path, text):
    """Writes `text` to `path` through a temp beside it (a fresh name, opened exclusive and
    without following links, so nothing planted there is written through), renamed over
    `path` only when complete. OutputError names the path on any failure; no temp stays."""
    d, base = os.path.split(path)
    for _ in range(100):
        tmp = os.path.join(d, ".%s.%d.%s.tmp" % (base, os.getpid(), secrets.token_hex(4)))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError("cannot write '%s': %s" % (path, e.strerror)) from None
    else:
        raise OutputError("cannot write '%s': no free temp name beside it" % path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError("cannot write '%s': %s" % (path, e.strerror)) from None


def prepare_out(path):
    """Creates the output directory and checks that a file can be created in it."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise BadInput("--out: '%s' exists and is not a directory" % path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise BadInput("--out: cannot create directory '%s': %s" % (path, e.strerror)) from None
    if not os.path.isdir(path):
        raise BadInput("--out: '%s' is not a directory" % path)
    probe = os.path.join(path, ".suite-probe.%d.%s.tmp" % (os.getpid(), secrets.token_hex(4)))
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        os.unlink(probe)
    except OSError as e:
        raise BadInput("--out: cannot write in '%s': %s" % (path, e.strerror)) from None


def launcher_command(args, problem, copy=None, quiet=False):
    """The launcher's words for this problem ({ranks} and {copy} replaced), adjusted for
    Open MPI (launch.py), and the environment; prints what was adjusted unless quiet."""
    words = [w.replace("{ranks}", str(problem["ranks"])).replace("{copy}", str(copy or 1))
             for w in shlex.split(args.launcher)]
    cmd, env, notes = launch.adjust(words)
    if args.copies > 1:
        env["MINIPT_SUITE_COPY"] = str(copy)
        # Concurrent mpiruns each bind their ranks to the first cores: all copies would share
        # them. Without binding the kernel spreads the copies.
        if launch.is_open_mpi(cmd[0]) and os.path.basename(cmd[0]) in ("mpirun", "mpiexec") \
                and not any(a.startswith(("--bind-to", "-bind-to")) for a in cmd):
            cmd.insert(1, "--bind-to")
            cmd.insert(2, "none")
            notes.append("%d copies at once: --bind-to none (each mpirun would bind its ranks "
                         "to the same first cores)" % args.copies)
    if not quiet:
        for n in notes:
            print("launch: %s" % n, flush=True)
    return cmd, env


def throughput(problem, docs):
    """The job of K copies: each copy's figure of merit, the job's = the slowest copy's."""
    copies = [{"copy": i + 1, "verification": d["verification"], "failure": d["failure"],
               "figure_of_merit": d["figure_of_merit"]["value"] if d["figure_of_merit"] else None,
               "odc_over_fsdp": d["figure_of_merit"]["odc_over_fsdp"] if d["figure_of_merit"]
               else None, "stable": d.get("stable")} for i, d in enumerate(docs)]
    failed = [c for c in copies if c["verification"] != "PASSED"]
    launch_failed = [c for c in failed if c["verification"] == "NOT RUN"]
    doc = {"problem": problem["name"], "config": problem["config"], "ranks": problem["ranks"],
           "nodes": problem["nodes"], "copies": len(docs), "repetitions": docs[0]["repetitions"],
           "spread_limit": problem["spread_limit"], "loss_rtol": problem["loss_rtol"],
           "parameter_norm_rtol": problem["parameter_norm_rtol"], "copy": copies,
           "verification": ("NOT RUN" if launch_failed else "FAILED") if failed else "PASSED",
           "failure": "; ".join("copy %d: %s" % (c["copy"], c["failure"]) for c in failed) or None,
           "provenance": docs[0].get("provenance")}
    if failed:
        doc["figure_of_merit"] = None
        return doc
    slowest = min(copies, key=lambda c: c["figure_of_merit"])
    d = docs[slowest["copy"] - 1]
    doc["figure_of_merit"] = dict(d["figure_of_merit"], copy=slowest["copy"], name=(
        "useful tokens/s per GPU (rank) of the slowest of %d concurrent copies (each: median "
        "over repetitions, faster mode)" % len(docs)))
    doc["stable"] = all(c["stable"] for c in copies)
    doc["modes"] = d["modes"]  # the slowest copy's, as its figure of merit
    return doc


def throughput_markdown(doc):
    lines = ["# minipt suite: problem `%s`, throughput mode" % doc["problem"], "",
             "%d copies at once, each %d ranks on %d node(s), %d repetitions of fsdp+micro and "
             "odc+mini, configuration `%s`." % (doc["copies"], doc["ranks"], doc["nodes"],
                                                 doc["repetitions"], doc["config"]), ""]
    if doc["verification"] != "PASSED":
        lines += ["**%s**: %s" % ("LAUNCH FAILED" if doc["verification"] == "NOT RUN" else
                                  "VERIFICATION FAILED", doc["failure"]), "",
                  "No figure of merit is reported.", ""]
    else:
        fom = doc["figure_of_merit"]
        lines += ["**Figure of merit: %.1f useful tokens/s per GPU**, the slowest copy's "
                  "(copy %d)%s." % (fom["value"], fom["copy"],
                                    "" if doc["stable"] else " — **UNSTABLE**"), ""]
    lines += ["| copy | figure of merit | odc/fsdp | stable | verification | report |",
              "| ---: | ---: | ---: | --- | --- | --- |"]
    for c in doc["copy"]:
        lines.append("| %d | %s | %s | %s | %s | copy-%d/report.md |" % (
            c["copy"], "%.1f" % c["figure_of_merit"] if c["figure_of_merit"] else "-",
            "%.3fx" % c["odc_over_fsdp"] if c["odc_over_fsdp"] else "-",
            {True: "yes", False: "**no**", None: "-"}[c["stable"]], c["verification"], c["copy"]))
    lines.append("")
    return "\n".join(lines)


def fom_line(label, fom, stable):
    return ("SUITE %s figure_of_merit=%.1f mode=%s odc_over_fsdp=%.4f utilization_fsdp=%.4f "
            "utilization_odc=%.4f stable=%s" % (label, fom["value"], fom["mode"],
                                                fom["odc_over_fsdp"], fom["utilization_fsdp"],
                                                fom["utilization_odc"], str(stable).lower()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("problem", help="small, medium or large (inputs/suite/suite.toml)")
    ap.add_argument("--out", help="output directory (default out/suite/PROBLEM)")
    ap.add_argument("--repetitions", type=int, help="repetitions (default: the problem's; at "
                    "least rules.min_repetitions)")
    ap.add_argument("--ranks", type=int, help="the job's rank count, checked against the "
                    "problem's (harnesses: JUBE, ReFrame); exit 2 when they differ")
    ap.add_argument("--copies", type=int, default=1, help="throughput mode: start this many "
                    "copies of every run at once, each its own ranks and DIR/copy-N/ (default "
                    "1); the job's figure of merit is the slowest copy's")
    ap.add_argument("--minipt", default=default_minipt(), help="the executable (default: "
                    "build/{cuda,cpu}/src/minipt, else the install's bin/minipt, else PATH)")
    ap.add_argument("--launcher", default="mpirun -n {ranks}",
                    help="command before minipt; {ranks} is replaced (default: %(default)s; "
                    "under Slurm e.g. 'srun --mpi=pmix'). Open MPI's mpirun gets "
                    "--oversubscribe when the ranks exceed the cores and the root variables "
                    "when run as root (launch.py), and says so; {copy} is the copy's number "
                    "in throughput mode")
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
        if args.ranks is not None and args.ranks != problem["ranks"]:
            raise BadInput("--ranks: %d, but problem %s runs on %d ranks (%d node(s); "
                           "inputs/suite/suite.toml)" % (args.ranks, problem["name"],
                                                         problem["ranks"], problem["nodes"]))
        if args.copies < 1:
            raise BadInput("--copies: %d (allowed: 1 or more)" % args.copies)
        if not args.minipt or not os.path.isfile(args.minipt) or not os.access(args.minipt,
                                                                               os.X_OK):
            raise BadInput("--minipt: '%s' is not an executable file" % args.minipt)
        args.minipt = os.path.abspath(args.minipt)
        launcher0 = shlex.split(args.launcher)[:1]
        if not launcher0:
            raise BadInput("--launcher: empty (e.g. 'mpirun -n {ranks}')")
        if shutil.which(launcher0[0]) is None:
            raise BadInput("--launcher: '%s' not found" % launcher0[0])
        out = args.out or os.path.join("out", "suite", problem["name"])
        prepare_out(out)
        copy_dirs = [out] if args.copies == 1 else [
            os.path.join(out, "copy-%d" % (c + 1)) for c in range(args.copies)]
        for d in copy_dirs:
            prepare_out(os.path.join(d, "runs"))
    except BadInput as e:
        print("run/suite/run.py: error: %s" % e, file=sys.stderr)
        return 2
    args.launchers = [launcher_command(args, problem, None if args.copies == 1 else c + 1,
                                  quiet=c > 0) for c in range(args.copies)]
    if args.copies > 1:
        print("throughput mode: %d copies of %d ranks at once (%d ranks on %d cores)" % (
            args.copies, problem["ranks"], args.copies * problem["ranks"], launch.local_cores()),
              flush=True)
    copies = list(range(args.copies))
    runs = [[] for _ in copies]
    failure = ["" for _ in copies]
    for rep in range(1, reps + 1):
        pair = [{} for _ in copies]
        for mode in ("fsdp", "odc"):
            live = [c for c in copies if not failure[c]]
            started = [(c, Run(args, problem, mode, rep, os.path.join(copy_dirs[c], "runs"),
                               None if args.copies == 1 else c + 1)) for c in live]
            try:
                for c, r in started:
                    res = r.finish()
                    runs[c].append(res)
                    pair[c][mode] = res
                    if "error" in res:
                        failure[c] = res["error"]
            except OutputError as e:
                for _, r in started:  # the other copies' jobs end before the exit
                    if r.proc is not None:
                        r.proc.wait()
                print("run/suite/run.py: error: %s" % e, file=sys.stderr)
                return 2
        for c in copies:
            if not failure[c] and len(pair[c]) == 2:
                failure[c] = agreement(problem, pair[c]["fsdp"], pair[c]["odc"])
            who = "" if args.copies == 1 else "copy %d: " % (c + 1)
            if len(pair[c]) == 0:
                continue
            print("repetition %d/%d: %s%s" % (rep, reps, who, failure[c] or
                                              "fsdp %.1f, odc %.1f tokens/s/rank" % (
                pair[c]["fsdp"]["tokens_per_s_per_rank"], pair[c]["odc"]["tokens_per_s_per_rank"])),
                  flush=True)
        if all(failure):
            break
    docs = [summarise(problem, runs[c], failure[c], reps) for c in copies]
    doc = docs[0] if args.copies == 1 else throughput(problem, docs)
    try:
        if args.copies > 1:
            for c in copies:
                write_atomic(os.path.join(copy_dirs[c], "suite.json"),
                             json.dumps(docs[c], indent=2) + "\n")
                write_atomic(os.path.join(copy_dirs[c], "report.md"), markdown(docs[c]))
        write_atomic(os.path.join(out, "suite.json"), json.dumps(doc, indent=2) + "\n")
        write_atomic(os.path.join(out, "report.md"),
                     markdown(doc) if args.copies == 1 else throughput_markdown(doc))
    except OutputError as e:
        print("run/suite/run.py: error: %s" % e, file=sys.stderr)
        return 2
    if doc["verification"] != "PASSED":
        print("SUITE %s %s: %s" % (problem["name"], "LAUNCH FAILED" if doc["verification"] ==
                                   "NOT RUN" else "VERIFICATION FAILED", doc["failure"]))
        return 1
    if args.copies > 1:
        for c in copies:
            print(fom_line("%s copy=%d" % (problem["name"], c + 1), docs[c]["figure_of_merit"],
                           docs[c]["stable"]))
        fom = doc["figure_of_merit"]
        print(fom_line(problem["name"], fom, doc["stable"]) + " copies=%d slowest_copy=%d" % (
            args.copies, fom["copy"]))
    else:
        print(fom_line(problem["name"], doc["figure_of_merit"], doc["stable"]))
        for mode, m in doc["modes"].items():
            t = m["tokens_per_s_per_rank"]
            print("SUITE %s %s median=%.1f min=%.1f max=%.1f spread=%.4f limit=%.4f stable=%s" % (
                problem["name"], mode, t["median"], t["min"], t["max"], t["spread"],
                problem["spread_limit"], str(m["stable"]).lower()))
    print("wrote %s and %s" % (os.path.join(out, "suite.json"), os.path.join(out, "report.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
