#!/usr/bin/env python3
"""One driver for the reference paper's figures (run/paper/README.md): each figure is a
grid of points; each point is every method's tokens/s from `minipt simulate` with the
costs calibrated for that model shape (or the FLOP model where none is committed),
beside the imbalance bound `minipt plan` computes and the paper's number where one is
known. Prints a markdown table and writes it (and a PNG for the throughput figures) to
OUT (default out/paper/FIGURE).

  run/paper/paper.py FIGURE [--smoke] [--out DIR] [--minipt BIN] [--steps N]
                     [--costs calibrated|committed] [--variation-seed N] [--set K=V ...]
                     [--only REGEX]
  FIGURE: sft-grid | rl | parametric | internode | hsdp | bubbles | primitives

Costs (--costs calibrated, the default): the committed cost file of the shape, plus the
two per-run costs the files may lack, each measured by `minipt calibrate` on a committed
timeline (never fitted to the paper): odc's per-step work (`odc_step_s`) from the
shape's one-GPU odc timeline, and, where the file has no per-block spread (`cv`), the
spread of the timeline the file was fitted from; simulated with sim.variation_seed = 1.
--costs committed: the committed file as it is, no variation (the earlier behaviour).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = "analysis/examples/gpu-1xh200/"
# Per shape: the committed cost file (calibrated on one H200), the timeline it was fitted
# from and the same shape's odc timeline (analysis/examples/gpu-1xh200/README.md).
COSTS = {
    "qwen2.5-1.5b": (EX + "cost.toml", EX + "qwen2.5-1.5b_longalign_8x1_fsdp.h5",
                     EX + "qwen2.5-1.5b_longalign_8x1_odc.h5"),
    "qwen2.5-14b": (EX + "cost-14b.toml", EX + "qwen2.5-14b-4layers_longalign_8x1_fsdp.h5",
                    EX + "qwen2.5-14b-4layers_longalign_8x1_odc.h5"),
    "qwen2.5-32b": (EX + "cost-32b.toml", EX + "qwen2.5-32b-4layers_longalign_8x1_fsdp.h5",
                    EX + "qwen2.5-32b-4layers_longalign_8x1_odc.h5"),
}
# FLOP model at the 1.5B H200 run's measured MFU (45.5% of 989 TFLOP/s) where no cost file
# of the shape is committed.
FLOPS_PEAK = 450.0
GPUS = {"qwen2.5-1.5b": 8, "qwen2.5-7b": 8, "qwen2.5-14b": 16, "qwen2.5-32b": 32}
METHODS = [("fsdp", "localsort"), ("fsdp", "micro"), ("odc", "micro"), ("odc", "mini")]
# RL: the baseline without balancing (one sequence per microbatch in arrival order) in place
# of verl's own; LB-Mini with free sequence counts (with balance.equal_counts its plan is
# LB-Micro's by construction).
RL_METHODS = [("fsdp", "arrival"), ("fsdp", "micro"), ("odc", "micro"), ("odc", "mini")]
SH = " (second-hand)"  # reported in reviews of the paper, not read off its own tables
# The paper's numbers: (model, workload, seq/GPU) -> {column: text}. Speedups are over
# fsdp + LB-Micro; "mini/micro" is odc + LB-Mini over odc + LB-Micro.
PAPER = {
    ("qwen2.5-14b", "longalign", 4): {"odc+micro": "1.28" + SH, "odc+mini": "1.36" + SH},
    ("qwen2.5-1.5b", "longalign", 4): {"odc+micro": "1.16" + SH, "odc+mini": "1.34" + SH},
    ("qwen2.5-32b", "longalign", 2): {"odc+micro": "0.98" + SH},
    ("qwen2.5-1.5b", "swe", 2): {"mini/micro": "1.27" + SH},
}
PAPER_1GPU = "gains vanish" + SH
PAPER_RL = "odc -5% to +11%" + SH
PAPER_HSDP = "up to +28% even for short sequences" + SH
PAPER_FIG11 = "odc 3-4x slower than NCCL at 16-32 GPUs" + SH


def _result_module():
    """run/lib/result: the one reader of minipt's JSON results for the scripts under run/."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("result", os.path.join(ROOT, "run", "lib",
                                                                          "result"))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("result", loader))
    loader.exec_module(mod)
    return mod


RESULT = _result_module()


def parse(source, what):
    """Every reading of minipt's results is here, through run/lib/result: 'json' is the
    text of `plan --json` (returned whole); 'bound' its ratio; any other WHAT a key of
    the summary of the JSON file SOURCE (written beside simulate's timeline)."""
    if what in ("json", "bound"):
        j = json.loads(source)
        return j if what == "json" else float(RESULT.value(j, "ratio"))
    return float(RESULT.value(RESULT.load(source), "summary." + what))


def run(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


class Costs:
    """Per shape: the cost file the simulations use and what it includes (see the module
    docstring)."""

    def __init__(self, binary, out, mode, seed):
        self.binary, self.dir, self.mode, self.seed = binary, os.path.join(out, "costs"), mode, seed
        self.files = {}

    def calibrated(self, timeline):
        path = os.path.join(self.dir, os.path.basename(timeline) + ".toml")
        if not os.path.exists(path):
            run([self.binary, "calibrate", timeline, "--out", path])
        with open(path, "rb") as f:
            return tomllib.load(f)

    def file(self, model):
        """(cost file or None, description, variation seed to simulate with)."""
        if model not in COSTS:
            return None, "FLOPs at %.0f TFLOP/s" % FLOPS_PEAK, 0
        if model in self.files:
            return self.files[model]
        committed, fitted_from, odc = COSTS[model]
        name = os.path.basename(committed)
        if self.mode == "committed":
            self.files[model] = (committed, name, 0)
            return self.files[model]
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(ROOT, committed)) as f:
            lines = f.read().splitlines()
        with open(os.path.join(ROOT, committed), "rb") as f:
            base = tomllib.load(f)
        odc_step = self.calibrated(odc)["compute"]["odc_step_s"]
        blocks = base["compute"]["block"]
        spread = {} if all("cv" in blocks[p] for p in blocks) else \
            self.calibrated(fitted_from)["compute"]["block"]
        out, section = [], None
        for line in lines:
            if line.startswith("odc_step_s"):
                continue
            out.append(line)
            if line.startswith("["):
                section = line.strip("[]")
                if section == "compute":
                    out.append("odc_step_s = %.9g" % odc_step)
                m = re.fullmatch(r"compute\.block\.(\w+)", section)
                if m and m.group(1) in spread and "cv" not in blocks.get(m.group(1), {}):
                    out.append("cv = %.9g" % spread[m.group(1)]["cv"])
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        cv = "cv %s" % ("committed" if not spread else "of " + os.path.basename(fitted_from))
        desc = "%s + odc_step %.1f ms + %s%s" % (name, odc_step * 1e3, cv,
                                               ", seed %d" % self.seed if self.seed else
                                               ", variation off")
        self.files[model] = (path, desc, self.seed)
        return self.files[model]


class Point:
    def __init__(self, model, workload, per_gpu, gpus, steps, extra=(), methods=None,
                 label=""):
        self.model, self.workload, self.per_gpu, self.gpus = model, workload, per_gpu, gpus
        self.steps, self.extra = steps, list(extra)
        self.methods = methods or METHODS
        self.label = label

    def name(self):
        return "%s:%s:%d:%d %s" % (self.model, self.workload, self.per_gpu, self.gpus,
                                   " ".join(x for x in self.extra if x != "--set"))

    def args(self, user):
        return ["--config", "inputs/models/%s.toml" % self.model,
                "--config", "inputs/workloads/%s.toml" % self.workload,
                "--set", "workload.minibatch_size=%d" % (self.per_gpu * self.gpus),
                "--set", "run.steps=%d" % self.steps, "--set", "run.warmup_steps=1",
                "--set", "sim.trace_ranks=4", *self.extra, *user]

    def simulate(self, ctx, mode, scheme, extra=(), keep=None):
        cost, _, seed = ctx.costs.file(self.model)
        cmd = [ctx.binary, "simulate", *self.args(ctx.user), "--set", "compute.backend=cuda", *extra,
               "--set", "run.mode=" + mode, "--set", "balance.scheme=" + scheme,
               "--ranks", str(self.gpus), "--quiet",
               "--out", keep or os.path.join(ctx.out, "sim.h5")]
        if cost:
            cmd += ["--cost", cost, "--set", "sim.variation_seed=%d" % seed]
        else:
            cmd += ["--set", "compute.peak_tflops=%g" % FLOPS_PEAK]
        run(cmd)
        h5 = cmd[cmd.index("--out") + 1]
        return parse(h5[:-3] + ".json", "tokens_per_s")

    def plan(self, ctx, mode="odc", scheme="mini", extra=(), json_out=False):
        cost, _, _ = ctx.costs.file(self.model)
        cmd = [ctx.binary, "plan", *self.args(ctx.user), *extra, "--set", "run.mode=" + mode,
               "--set", "balance.scheme=" + scheme, "--ranks", str(self.gpus)]
        if cost:
            cmd += ["--set", "compute.cost_model=" + cost]
        else:
            cmd += ["--set", "compute.peak_tflops=%g" % FLOPS_PEAK]
        return parse(run(cmd + ["--json"]), "json" if json_out else "bound")

    def measure(self, ctx):
        res = {}
        for mode, scheme in self.methods:
            extra = ["--set", "balance.equal_counts=false"] if self.methods is RL_METHODS and \
                scheme == "mini" else []
            res["%s+%s" % (mode, scheme)] = self.simulate(ctx, mode, scheme, extra)
        res["bound"] = self.plan(ctx)
        return res


class Ctx:
    pass


def points(figure, smoke, steps):
    if figure in ("sft-grid", "rl"):
        models = ["qwen2.5-1.5b"] if smoke else ["qwen2.5-1.5b", "qwen2.5-7b", "qwen2.5-14b",
                                                 "qwen2.5-32b"]
        workloads = ["rl-aime"] if figure == "rl" else (["longalign"] if smoke else
                                                        ["longalign", "swe"])
        per_gpu = [2] if smoke else [1, 2, 4, 8]
        extra = ["--set", "balance.equal_counts=true"] if figure == "rl" else []
        methods = RL_METHODS if figure == "rl" else METHODS
        return [Point(m, w, n, GPUS[m], steps, extra, methods) for m in models
                for w in workloads for n in per_gpu]
    if figure == "parametric":
        base = dict(model="qwen2.5-1.5b", workload="longalign", steps=steps)
        drop = ["--set", "workload.tail=drop"]
        grid = [(4, 8, [], "seq/GPU")] if smoke else (
            [(n, 8, [], "seq/GPU") for n in (1, 2, 4, 8, 16)] +
            [(4, 8, [*drop, "--set", "workload.max=%d" % m, "--set",
                     "balance.token_budget=%d" % m], "longest sequence (tail drop)")
             for m in (32768, 65536, 131072)] +
            [(4, 8, ["--set", "balance.token_budget=%d" % b], "token budget")
             for b in (98304, 131072)] +
            [(4, g, [], "GPUs") for g in (16, 32)])
        return [Point(per_gpu=n, gpus=g, extra=e, label=lab, **base) for n, g, e, lab in grid]
    if figure == "hsdp":
        # Two nodes of 8 GPUs (16 GPUs), each unit sharded inside a node.
        models = ["qwen2.5-1.5b"] if smoke else ["qwen2.5-1.5b", "qwen2.5-14b"]
        workloads = ["short"] if smoke else ["longalign", "swe", "short"]
        per_gpu = [2] if smoke else [1, 2, 4, 8]
        return [Point(m, w, n, 16, steps, ["--set", "sim.gpus_per_node=8", "--set",
                                           "parallel.shard=8"])
                for m in models for w in workloads for n in per_gpu]
    if figure == "internode":
        # Nodes of 8 GPUs; the one-sided inter-node rate is swept per point (run_internode).
        if smoke:
            return [Point("qwen2.5-1.5b", "longalign", 2, 16, steps,
                          ["--set", "sim.gpus_per_node=8"])]
        return [Point(m, "longalign", n, g, steps, ["--set", "sim.gpus_per_node=8"])
                for m, g, ns in (("qwen2.5-1.5b", 16, (1, 2, 4)), ("qwen2.5-14b", 16, (1, 2, 4)),
                                 ("qwen2.5-14b", 32, (1, 2, 4)), ("qwen2.5-32b", 32, (2,)))
                for n in ns]
    if figure == "bubbles":
        if smoke:
            return [Point("qwen2.5-1.5b", "longalign", 2, 8, steps)]
        return [Point("qwen2.5-1.5b", "longalign", 4, 8, steps),
                Point("qwen2.5-1.5b", "swe", 4, 8, steps),
                Point("qwen2.5-14b", "longalign", 4, 16, steps),
                Point("qwen2.5-14b", "swe", 2, 16, steps)]
    sys.exit("unknown figure %r (allowed: sft-grid|rl|parametric|internode|hsdp|bubbles|"
             "primitives)" % figure)


def f3(x):
    return "%.3f" % x


def paper_cell(p, key, figure):
    if figure in ("sft-grid", "internode") and (p.model, p.workload, p.per_gpu) in PAPER \
            and p.gpus == GPUS[p.model]:  # the paper's GPU count of the shape
        return PAPER[(p.model, p.workload, p.per_gpu)].get(key, "–")
    if figure == "sft-grid" and p.per_gpu == 1 and key == "odc+mini":
        return PAPER_1GPU
    return "–"


def table(lines, columns, rows):
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + " --- |" * len(columns))
    print(lines[-2]), print(lines[-1])
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)


def throughput_figure(ctx, figure, pts):
    """sft-grid, rl, parametric, hsdp: every method's tokens/s per point."""
    rl = figure == "rl"
    methods = RL_METHODS if rl else METHODS
    ref = "fsdp+arrival" if rl else "fsdp+micro"
    columns = ["model", "workload", "seq/GPU", "GPUs", "extra", "costs"] + \
        ["%s+%s tok/s" % m for m in methods]
    if rl:
        columns += ["odc+micro over baseline", "odc+mini over baseline",
                    "fsdp+micro over baseline", "odc+mini over fsdp+micro", "bound",
                    "paper (odc over baseline)"]
    else:
        columns += ["odc+micro speedup", "odc+mini speedup", "mini/micro", "bound",
                    "paper odc+micro", "paper odc+mini", "paper mini/micro"]
    lines, results = [], []

    def rows():
        for p in pts:
            if ctx.only and not re.search(ctx.only, p.name()):
                continue
            r = p.measure(ctx)
            results.append((p, r))
            extra = " ".join(x for x in p.extra if x != "--set") or "–"
            row = [p.model, p.workload, str(p.per_gpu), str(p.gpus), extra,
                   ctx.costs.file(p.model)[1]] + \
                ["{:,.0f}".format(r["%s+%s" % m]) for m in methods]
            if rl:
                b = r[ref]
                row += [f3(r["odc+micro"] / b), f3(r["odc+mini"] / b), f3(r["fsdp+micro"] / b),
                        f3(r["odc+mini"] / r["fsdp+micro"]), f3(r["bound"]), PAPER_RL]
            else:
                b = r[ref]
                row += [f3(r["odc+micro"] / b), f3(r["odc+mini"] / b),
                        f3(r["odc+mini"] / r["odc+micro"]), f3(r["bound"]),
                        paper_cell(p, "odc+micro", figure), paper_cell(p, "odc+mini", figure),
                        paper_cell(p, "mini/micro", figure)]
                if figure == "hsdp" and p.workload == "short":
                    row[-2] = PAPER_HSDP
            yield row

    table(lines, columns, rows())
    return lines, results, ref


def run_internode(ctx, pts):
    """internode: fsdp's methods once per point, odc's at each one-sided inter-node rate
    (1, 1/2, 1/3, 1/4 of the collectives' inter-node rate of the cost file)."""
    columns = ["model", "workload", "seq/GPU", "GPUs (nodes x 8)", "costs", "one-sided GB/s",
               "fsdp+localsort tok/s", "fsdp+micro tok/s", "odc+micro tok/s", "odc+mini tok/s",
               "odc+micro speedup", "odc+mini speedup", "bound", "paper odc+micro"]
    lines, results = [], []

    def rows():
        for p in pts:
            if ctx.only and not re.search(ctx.only, p.name()):
                continue
            cost = ctx.costs.file(p.model)[0]
            with open(os.path.join(ROOT, cost) if not os.path.isabs(cost) else cost, "rb") as f:
                coll = tomllib.load(f)["comm"]["inter"]["allgather"]["bandwidth_GBps"]
            fsdp = {s: p.simulate(ctx, "fsdp", s) for s in ("localsort", "micro")}
            bound = p.plan(ctx)
            for frac in ((1,) if ctx.smoke else (1, 2, 3, 4)):
                rate = coll / frac
                ex = ["--set", "sim.onesided_inter_bandwidth_GBps=%g" % rate]
                odc = {s: p.simulate(ctx, "odc", s, ex) for s in ("micro", "mini")}
                r = {"fsdp+localsort": fsdp["localsort"], "fsdp+micro": fsdp["micro"],
                     "odc+micro": odc["micro"], "odc+mini": odc["mini"], "bound": bound,
                     "rate": rate}
                results.append((p, r))
                b = r["fsdp+micro"]
                yield [p.model, p.workload, str(p.per_gpu),
                       "%d (%d x 8)" % (p.gpus, p.gpus // 8), ctx.costs.file(p.model)[1],
                       "%.2f (1/%d)" % (rate, frac) if frac > 1 else "%.2f (= collectives)" % rate,
                       *["{:,.0f}".format(r[k]) for k in ("fsdp+localsort", "fsdp+micro",
                                                          "odc+micro", "odc+mini")],
                       f3(r["odc+micro"] / b), f3(r["odc+mini"] / b), f3(bound),
                       paper_cell(p, "odc+micro", "internode") if frac == 1 else "–"]

    table(lines, columns, rows())
    return lines, results


def plan_bubble(plan, mode):
    """The packer's estimated bubble over the measured steps: 1 − Σ busy / (ranks × Σ step),
    each rank's busy time its modelled microbatch times; fsdp's step Σ over microbatch
    slots of the slowest rank's microbatch (every layer waits for it), odc's the slowest
    rank's total."""
    busy = step = 0.0
    for s in plan["per_step"]:
        if not s["measured"]:
            continue
        mbs = s["microbatch_ms"]
        busy += sum(sum(r) for r in mbs)
        if mode == "fsdp":
            slots = max(len(r) for r in mbs)
            step += sum(max(r[i] if i < len(r) else 0.0 for r in mbs) for i in range(slots))
        else:
            step += max(sum(r) for r in mbs)
        ranks = len(mbs)
    return 1.0 - busy / (ranks * step)


def run_bubbles(ctx, pts):
    """bubbles: per method the packer's estimate (plan --json) and the idle share measured
    on the simulated timeline (minipt_analysis.metrics: 1 − utilisation, mean over ranks)."""
    sys.path.insert(0, os.path.join(ROOT, "analysis"))
    from minipt_analysis import Run
    from minipt_analysis.metrics import compute_metrics
    columns = ["model", "workload", "seq/GPU", "GPUs", "costs", "method", "tok/s",
               "estimated bubble (plan)", "measured bubble (simulated timeline)",
               "of which waiting for ranks", "paper bubble"]
    lines, results = [], []

    def rows():
        for p in pts:
            if ctx.only and not re.search(ctx.only, p.name()):
                continue
            for mode, scheme in METHODS:
                h5 = os.path.join(ctx.out, "sim-%s-%s.h5" % (mode, scheme))
                tps = p.simulate(ctx, mode, scheme, keep=h5)
                est = plan_bubble(p.plan(ctx, mode, scheme, json_out=True), mode)
                with Run(h5) as r:
                    m = compute_metrics(r)
                    idle, wait = m.idle_fraction, m.waiting_fraction
                results.append((p, (mode, scheme), est, idle))
                yield [p.model, p.workload, str(p.per_gpu), str(p.gpus),
                       ctx.costs.file(p.model)[1], "%s+%s" % (mode, scheme),
                       "{:,.0f}".format(tps), "%.1f%%" % (100 * est), "%.1f%%" % (100 * idle),
                       "%.1f%%" % (100 * wait), "not available"]

    table(lines, columns, rows())
    return lines, results


# Fig 11's per-layer sizes (elements): one decoder block of the 1.5B, 7B, 14B, 32B shapes.
LAYERS = [(46799360, "qwen2.5-1.5b"), (233061376, "qwen2.5-7b"), (275273728, "qwen2.5-14b"),
          (487610368, "qwen2.5-32b")]


def layer_times(ctx, model, ranks, extra):
    """One block's primitives, from a `minipt simulate` of a one-block model of the shape
    (vocabulary 64, so the embedding and head move next to nothing; one 128-token sequence
    per rank; compute at 1e6 TFLOP/s, so nothing hides or delays a transfer; the
    simulator's default links, README "Scale model"): the measured step's block (unit 1)
    transfer times in µs, forward and backward gathers/gets averaged."""
    sys.path.insert(0, os.path.join(ROOT, "analysis"))
    from minipt_analysis import Run
    out = {}
    for mode in ("fsdp", "odc"):
        h5 = os.path.join(ctx.out, "layer.h5")
        run([ctx.binary, "simulate", "--config", "inputs/models/%s.toml" % model,
             "--set", "model.layers=1", "--set", "model.vocab=64",
             "--set", "workload.distribution=constant", "--set", "workload.mean=128",
             "--set", "workload.minibatch_size=%d" % ranks, "--set", "run.steps=2",
             "--set", "run.warmup_steps=1", "--set", "compute.backend=cuda",
             "--set", "compute.peak_tflops=1e6", "--set", "run.mode=" + mode,
             "--set", "balance.scheme=micro", "--set", "sim.gpus_per_node=8", *extra,
             "--ranks", str(ranks), "--quiet", "--out", h5])
        with Run(h5) as r:
            ev = r.events
            kinds = list(r.kind_names)
            sel = (ev["step"][:] == 1) & (ev["unit"][:] == 1)
            d = (ev["t_end_ns"][:] - ev["t_start_ns"][:]) / 1e3
            k = ev["kind"][:]
            b = ev["bytes"][:]
            for name in (("gather", "reduce_scatter") if mode == "fsdp" else
                         ("get", "accumulate")):
                m = sel & (k == kinds.index(name))
                out[name] = float(d[m].mean())
                if name in ("gather", "get"):
                    out["elements"] = int(b[m].max() // 2) if mode == "fsdp" else out.get(
                        "elements")
    return out


def run_primitives(ctx):
    """primitives (Fig 11): one block's all-gather + reduce-scatter (fsdp) against pull +
    push (odc), simulated inside a node (2 GPUs, beside the 2x H200 measurements) and
    across nodes of 8 GPUs (16, 32) with the one-sided inter-node rate swept."""
    lines, results = [], []
    sizes = LAYERS[:1] if ctx.smoke else LAYERS
    fracs = (1,) if ctx.smoke else (1, 2, 3, 4)
    coll = 45.0  # the simulator's default collectives' rate between nodes (GB/s), below
    columns = ["layer elements (paper)", "minipt block elements", "GPUs", "one-sided GB/s",
               "fsdp gather µs", "fsdp reduce-scatter µs", "fsdp total µs", "odc pull µs",
               "odc push µs", "odc total µs", "odc / fsdp", "paper"]

    def rows():
        for elements, model in sizes:
            for gpus in ((2,) if ctx.smoke else (2, 16, 32)):
                for frac in ((1,) if gpus <= 8 else fracs):
                    rate = coll / frac
                    ex = [] if gpus <= 8 else ["--set",
                                               "sim.onesided_inter_bandwidth_GBps=%g" % rate]
                    t = layer_times(ctx, model, gpus, ex)
                    fs, od = t["gather"] + t["reduce_scatter"], t["get"] + t["accumulate"]
                    results.append((elements, gpus, rate, fs, od))
                    yield ["{:,}".format(elements), "{:,}".format(t["elements"]), str(gpus),
                           "intra-node" if gpus <= 8 else
                           ("%.2f (1/%d)" % (rate, frac) if frac > 1 else "%.2f (= NCCL)" % rate),
                           "%.0f" % t["gather"], "%.0f" % t["reduce_scatter"], "%.0f" % fs,
                           "%.0f" % t["get"], "%.0f" % t["accumulate"], "%.0f" % od,
                           "%.2f" % (od / fs), PAPER_FIG11 if gpus > 8 and frac == 1 else "–"]

    table(lines, columns, rows())
    # The committed 2x H200 measurements (run/bench/comm = tests/gpu_comm), same sizes.
    note = ["", "Measured on 2x H200 (`run/bench/comm`, run/bench/results/2026-11-27-gpu-comm-h200x2-*): minipt's "
            "own transports, time per call in µs", ""]
    lines += note
    print("\n".join(note))
    meas = []
    for f in ("2026-11-27-gpu-comm-h200x2-run1.json", "2026-11-27-gpu-comm-h200x2-run2.json",
              "2026-11-27-gpu-comm-h200x2-run3.txt"):
        path = os.path.join(ROOT, "run/bench/results", f)
        with open(path) as fh:
            text = fh.read()
        j = json.loads(text[text.index("JSON ") + 5:].strip()) if f.endswith(".txt") else \
            json.loads(text)
        for row in j["rows"]:
            meas.append((f, row))
    want = [("allgather", "minipt-nccl", "bf16"), ("reduce_scatter", "minipt-nccl", "bf16"),
            ("odc_pull", "ipc-bf16-mirror", "bf16"), ("odc_push", "ipc-atomic", "f32")]
    mcols = ["file", "elements", "fsdp gather (NCCL bf16)", "fsdp reduce-scatter (NCCL bf16)",
             "odc pull (IPC bf16 mirror)", "odc push (IPC atomic fp32)", "odc / fsdp",
             "odc / fsdp, reduce-scatter x2 (fp32 bytes, as minipt's fsdp)"]
    mrows = []
    for f in ("2026-11-27-gpu-comm-h200x2-run1.json", "2026-11-27-gpu-comm-h200x2-run2.json",
              "2026-11-27-gpu-comm-h200x2-run3.txt"):
        for elements, _ in sizes:
            got = {}
            for g, row in meas:
                if g == f and row["elements"] == elements:
                    for w in want:
                        if (row["op"], row["impl"], row["dtype"]) == w:
                            got[w[0]] = row["time_us"]
            if len(got) < 2:
                continue
            cell = ["%.0f" % got[w[0]] if w[0] in got else "–" for w in want]
            ratio = ratio2 = "–"
            if len(got) == 4:
                odc = got["odc_pull"] + got["odc_push"]
                ratio = "%.2f" % (odc / (got["allgather"] + got["reduce_scatter"]))
                ratio2 = "%.2f" % (odc / (got["allgather"] + 2 * got["reduce_scatter"]))
            mrows.append([f, "{:,}".format(elements), *cell, ratio, ratio2])
    table(lines, mcols, mrows)
    return lines, results


def png(path, figure, results, ref):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(results) + 2), 4))
    x = range(len(results))
    ax.bar([i - 0.2 for i in x], [r["odc+micro"] / r[ref] for _, r in results], 0.4,
           label="odc + LB-Micro")
    ax.bar([i + 0.2 for i in x], [r["odc+mini"] / r[ref] for _, r in results], 0.4,
           label="odc + LB-Mini")
    ax.plot(list(x), [r["bound"] for _, r in results], "k_", markersize=10, label="plan bound")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(["%s %s %d/%dG" % (p.model.replace("qwen2.5-", ""), p.workload[:4],
                                          p.per_gpu, p.gpus) for p, _ in results],
                       fontsize=5, rotation=90)
    ax.set_ylabel("tokens/s over " + ref)
    ax.set_title("%s (predicted by minipt simulate)" % figure)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure")
    ap.add_argument("--smoke", action="store_true", help="one small point, seconds on a CPU")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minipt", default=os.environ.get("MINIPT", "build/cpu/src/minipt"))
    ap.add_argument("--steps", type=int, default=None,
                    help="steps per point, the first a warm-up (default 21; --smoke 3)")
    ap.add_argument("--costs", choices=("calibrated", "committed"), default="calibrated")
    ap.add_argument("--variation-seed", type=int, default=1,
                    help="sim.variation_seed with --costs calibrated (0: off)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="passed to every simulate and plan (ablations)")
    ap.add_argument("--only", default=None, help="only points whose name matches (regex)")
    a = ap.parse_args()
    out = a.out or os.path.join(ROOT, "out", "paper", a.figure)
    os.makedirs(out, exist_ok=True)
    ctx = Ctx()
    ctx.binary = a.minipt if os.path.isabs(a.minipt) else os.path.join(ROOT, a.minipt)
    ctx.out, ctx.smoke, ctx.only = os.path.abspath(out), a.smoke, a.only
    ctx.user = [x for kv in a.set for x in ("--set", kv)]
    ctx.costs = Costs(ctx.binary, ctx.out, a.costs, a.variation_seed)
    steps = a.steps or (3 if a.smoke else 21)
    if a.figure == "primitives":
        lines, _ = run_primitives(ctx)
    elif a.figure == "internode":
        lines, _ = run_internode(ctx, points(a.figure, a.smoke, steps))
    elif a.figure == "bubbles":
        lines, _ = run_bubbles(ctx, points(a.figure, a.smoke, steps))
    else:
        lines, results, ref = throughput_figure(ctx, a.figure, points(a.figure, a.smoke, steps))
        if results:
            png(os.path.join(out, a.figure + ".png"), a.figure, results, ref)
    with open(os.path.join(out, a.figure + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("table: %s" % os.path.join(out, a.figure + ".md"))


if __name__ == "__main__":
    main()
