#!/usr/bin/env python3
"""One driver for the reference paper's figures (run/paper/README.md): each figure is a
grid of points; each point is every method's tokens/s, from `minipt simulate` with the
cost file calibrated for that model shape (or the FLOP model where none is committed),
beside the imbalance bound `minipt plan` computes and the paper's number where it has
one (as reported in reviews of the paper). Prints a markdown table and writes it and a
PNG to OUT (default out/paper/FIGURE).

  run/paper/paper.py FIGURE [--smoke] [--out DIR] [--minipt BIN]
  FIGURE: sft-grid | rl | parametric | internode | hsdp
"""

import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COSTS = {  # committed cost files, calibrated on one H200 (analysis/examples/gpu-1xh200)
    "qwen2.5-1.5b": "analysis/examples/gpu-1xh200/cost.toml",
    "qwen2.5-14b": "analysis/examples/gpu-1xh200/cost-14b.toml",
    "qwen2.5-32b": "analysis/examples/gpu-1xh200/cost-32b.toml",
}
# FLOP model at the 1.5B H200 run's measured MFU (45.5% of 989 TFLOP/s) where no cost file
# of the shape is committed.
FLOPS_PEAK = 450.0
GPUS = {"qwen2.5-1.5b": 8, "qwen2.5-7b": 8, "qwen2.5-14b": 16, "qwen2.5-32b": 32}
METHODS = [("fsdp", "localsort"), ("fsdp", "micro"), ("odc", "micro"), ("odc", "mini")]
# The paper's speedups over fsdp + LB-Micro, as reported in reviews of the paper:
# (model, workload, seq/GPU) → {method: speedup}.
PAPER = {
    ("qwen2.5-14b", "longalign", 4): {"odc+mini": 1.36, "odc+micro": 1.28},
    ("qwen2.5-1.5b", "longalign", 4): {"odc+mini": 1.34, "odc+micro": 1.16},
    ("qwen2.5-32b", "longalign", 2): {"odc+micro": 0.98},
}


def perf(text, key):
    m = re.search(r"^PERFORMANCE .*\b%s=([0-9.eE+-]+)" % key, text, re.M)
    if not m:
        raise RuntimeError("no PERFORMANCE %s in:\n%s" % (key, text))
    return float(m.group(1))


def run(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


class Point:
    def __init__(self, model, workload, per_gpu, gpus, steps, extra=()):
        self.model, self.workload, self.per_gpu, self.gpus = model, workload, per_gpu, gpus
        self.steps, self.extra = steps, list(extra)

    def args(self):
        a = ["--config", "inputs/models/%s.toml" % self.model,
             "--config", "inputs/workloads/%s.toml" % self.workload,
             "--set", "workload.minibatch_size=%d" % (self.per_gpu * self.gpus),
             "--set", "run.steps=%d" % self.steps, "--set", "run.warmup_steps=1",
             "--set", "sim.trace_ranks=4", *self.extra]
        return a

    def source(self):
        cost = COSTS.get(self.model)
        return ("simulated, %s" % os.path.basename(cost)) if cost else \
            ("simulated, FLOPs at %.0f TFLOP/s" % FLOPS_PEAK)

    def measure(self, binary, out):
        cost = COSTS.get(self.model)
        base = self.args() + ["--set", "compute.backend=cuda"]
        if not cost:
            base += ["--set", "compute.peak_tflops=%g" % FLOPS_PEAK]
        res = {}
        for mode, scheme in METHODS:
            cmd = [binary, "simulate", *base, "--set", "run.mode=" + mode,
                   "--set", "balance.scheme=" + scheme, "--ranks", str(self.gpus), "--quiet",
                   "--out", os.path.join(out, "sim.h5")]
            if cost:
                cmd += ["--cost", cost]
            res["%s+%s" % (mode, scheme)] = perf(run(cmd), "tokens_per_s")
        plan = [binary, "plan", *self.args(), "--set", "run.mode=odc", "--set",
                "balance.scheme=mini", "--ranks", str(self.gpus)]
        if cost:
            plan += ["--set", "compute.cost_model=" + cost]
        bound = re.search(r"^BOUND .*ratio=([0-9.]+)", run(plan), re.M)
        res["bound"] = float(bound.group(1))
        return res


def points(figure, smoke):
    steps = 2 if smoke else 4
    if figure in ("sft-grid", "rl"):
        models = ["qwen2.5-1.5b"] if smoke else ["qwen2.5-1.5b", "qwen2.5-7b", "qwen2.5-14b",
                                                 "qwen2.5-32b"]
        workloads = ["rl-aime"] if figure == "rl" else (["longalign"] if smoke else
                                                        ["longalign", "swe"])
        per_gpu = [2] if smoke else [1, 2, 4, 8]
        extra = ["--set", "balance.equal_counts=true"] if figure == "rl" else []
        return [Point(m, w, n, GPUS[m], steps, extra) for m in models for w in workloads
                for n in per_gpu]
    if figure == "parametric":
        base = dict(model="qwen2.5-1.5b", workload="longalign", steps=steps)
        grid = [(4, 8, [])] if smoke else (
            [(n, 8, []) for n in (1, 2, 4, 8, 16)] +
            [(4, 8, ["--set", "workload.max=%d" % m, "--set", "balance.token_budget=%d" % m])
             for m in (32768, 131072)] +
            [(4, 8, ["--set", "balance.token_budget=%d" % b]) for b in (98304, 131072)] +
            [(4, g, []) for g in (16, 32)])
        return [Point(per_gpu=n, gpus=g, extra=e, **base) for n, g, e in grid]
    if figure in ("internode", "hsdp"):
        # Two nodes of 8 GPUs (16 GPUs); hsdp: each unit sharded inside a node.
        models = ["qwen2.5-1.5b"] if smoke else ["qwen2.5-1.5b", "qwen2.5-14b"]
        shard = ["--set", "parallel.shard=8"] if figure == "hsdp" else []
        per_gpu = [2] if smoke else [1, 2, 4, 8]
        workloads = ["longalign"] if smoke else ["longalign", "swe"]
        return [Point(m, w, n, 16, steps, ["--set", "sim.gpus_per_node=8", *shard])
                for m in models for w in workloads for n in per_gpu]
    sys.exit("unknown figure %r (allowed: sft-grid|rl|parametric|internode|hsdp)" % figure)


COLUMNS = ["model", "workload", "seq/GPU", "GPUs", "extra", "source"] + \
    ["%s+%s tok/s" % m for m in METHODS] + \
    ["odc+micro speedup", "odc+mini speedup", "bound", "paper (odc+micro, odc+mini)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure")
    ap.add_argument("--smoke", action="store_true", help="one small point, seconds on a CPU")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minipt", default=os.environ.get("MINIPT", "build/cpu/src/minipt"))
    a = ap.parse_args()
    out = a.out or os.path.join(ROOT, "out", "paper", a.figure)
    os.makedirs(out, exist_ok=True)
    binary = a.minipt if os.path.isabs(a.minipt) else os.path.join(ROOT, a.minipt)
    rows = []
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    print(lines[0]), print(lines[1])
    for p in points(a.figure, a.smoke):
        r = p.measure(binary, out)
        base = r["fsdp+micro"]
        paper = PAPER.get((p.model, p.workload, p.per_gpu), {}) if a.figure == "sft-grid" else {}
        ppr = ", ".join("%.2f" % paper[k] if k in paper else "–" for k in ("odc+micro", "odc+mini"))
        extra = " ".join(x for x in p.extra if x != "--set") or "–"
        row = [p.model, p.workload, str(p.per_gpu), str(p.gpus), extra, p.source()] + \
            ["{:,.0f}".format(r["%s+%s" % m]) for m in METHODS] + \
            ["%.3f" % (r["odc+micro"] / base), "%.3f" % (r["odc+mini"] / base),
             "%.3f" % r["bound"], ppr if paper else "–"]
        rows.append((p, r))
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    with open(os.path.join(out, a.figure + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 4))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["odc+micro"] / r["fsdp+micro"] for _, r in rows], 0.4,
           label="odc + LB-Micro")
    ax.bar([i + 0.2 for i in x], [r["odc+mini"] / r["fsdp+micro"] for _, r in rows], 0.4,
           label="odc + LB-Mini")
    ax.plot(list(x), [r["bound"] for _, r in rows], "k_", markersize=14, label="plan bound")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(["%s\n%s %d/GPU %dG" % (p.model.replace("qwen2.5-", ""), p.workload,
                                               p.per_gpu, p.gpus) for p, _ in rows],
                       fontsize=6, rotation=90)
    ax.set_ylabel("tokens/s over fsdp + LB-Micro")
    ax.set_title("%s (predicted by minipt simulate)" % a.figure)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, a.figure + ".png"), dpi=120)
    print("table: %s\nfigure: %s" % (os.path.join(out, a.figure + ".md"),
                                     os.path.join(out, a.figure + ".png")))


if __name__ == "__main__":
    main()
