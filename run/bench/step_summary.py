#!/usr/bin/env python3
"""Tables of run/bench/step from its log: the PERFORMANCE lines of cuda_step and
step_torch.py, per microbatch set, best minipt configuration against the best PyTorch
variant that ran, MFU under both conventions (minipt's, causal attention FLOPs halved, and
attention counted in full as torchtitan and llm-foundry report), peak memory.

  step_summary.py LOG
"""
import sys


def records(path):
    out = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0] != "PERFORMANCE":
                continue
            r = {"impl": w[1], "set": w[2]}
            for k, v in zip(w[3::2], w[4::2]):
                r[k] = v
            out.append(r)
    return out


def name(r):
    if r["impl"] == "torch":
        ckpt = " no-ckpt" if r.get("checkpoint") == "none" else ""
        return "torch %s %s%s" % (r.get("attention", "varlen"), r.get("mode", "eager"), ckpt)
    blocks = r.get("recompute", "?")
    return "%s recompute=%s" % (r["impl"], blocks)


def main(path):
    rows = records(path)
    sets = []
    for r in rows:
        if r["set"] not in sets:
            sets.append(r["set"])
    print("%-6s %-34s %10s %7s %9s %8s" % ("set", "variant", "tokens/s", "MFU", "MFU full",
                                            "mem GiB"))
    for s in sets:
        here = [r for r in rows if r["set"] == s]
        for r in here:
            print("%-6s %-34s %10s %6.1f%% %8.1f%% %8s" % (
                s, name(r), r["tokens_per_s"], 100 * float(r["mfu"]),
                100 * float(r.get("mfu_full", "nan")),
                r.get("mem_used_gib", r.get("mem_peak_gib", "-"))))
    print()
    print("%-6s %-34s %7s %-34s %7s %6s" % ("set", "best minipt", "MFU", "best torch", "MFU",
                                            "ratio"))
    for s in sets:
        ours = [r for r in rows if r["set"] == s and r["impl"] != "torch"]
        theirs = [r for r in rows if r["set"] == s and r["impl"] == "torch"]
        if not ours or not theirs:
            continue
        a = max(ours, key=lambda r: float(r["tokens_per_s"]))
        b = max(theirs, key=lambda r: float(r["tokens_per_s"]))
        print("%-6s %-34s %6.1f%% %-34s %6.1f%% %6.2f" % (
            s, name(a), 100 * float(a["mfu"]), name(b), 100 * float(b["mfu"]),
            float(a["tokens_per_s"]) / float(b["tokens_per_s"])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
