"""Every multi-rank GPU path of minipt with several ranks sharing ONE GPU, against one rank.

Functional only: ranks that share a GPU time nothing meaningful. Each case trains the tiny
model for 4 steps and dumps step 3 (run.dump), twice; /params are then the parameters
after 3 optimizer steps. Checks: every case within 5e-4 (norm-wise relative, worst unit)
of the 1-rank run, and its two runs within 1e-7 of each other (the job-wide kernel
choices, compute.tuning = auto through one cache, make them equal). The 1-rank tolerance
is the bf16 one of modes_agree.py halved: what differs is the fp32 summation order of
gradients and how sequences are grouped into microbatches.

    python tests/gpu/multi_rank.py MINIPT_BIN [RANKS ...]     (default ranks: 2 4)

NCCL >= 2.30 with NCCL_MULTI_RANK_GPU_ENABLE=1 must be the libnccl minipt loads
(tests/gpu/multi_rank.sh finds or builds one and sets the environment).
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

TO_ONE_RANK, RUN_TO_RUN = 5e-4, 1e-7
binary = sys.argv[1]
rank_counts = [int(n) for n in sys.argv[2:]] or [2, 4]
tmp = tempfile.mkdtemp(prefix="minipt_multi_rank_")
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           NCCL_MULTI_RANK_GPU_ENABLE="1", NCCL_NVLS_ENABLE="0", NCCL_MAX_CTAS="2",
           MINIPT_TUNING_CACHE=os.environ.get("MINIPT_TUNING_CACHE", os.path.join(tmp, "cache")))
common = ["run", "--quiet", "--config", "inputs/experiments/tiny.toml", "--set", "compute.backend=cuda",
          "--set", "run.steps=4", "--set", "run.dump_step=3", "--set", "optim.lr=0.001"]


def cases():
    yield "1 rank", 1, ["run.mode=fsdp", "balance.scheme=micro"]
    for n in rank_counts:
        yield f"fsdp nccl {n}", n, ["run.mode=fsdp", "balance.scheme=micro", "comm.collectives=nccl"]
        for pull in ("kernel", "copy-engine"):
            yield f"odc ipc {pull} {n}", n, ["run.mode=odc", "balance.scheme=mini", "comm.onesided=ipc",
                                             f"comm.odc_pull={pull}"]
        yield f"odc ipc+staged {n} ({n // 2}/node)", n, [
            "run.mode=odc", "balance.scheme=mini", "comm.onesided=ipc+staged",
            f"comm.ranks_per_node={n // 2}"]
        if n >= 4:
            hybrid = ["parallel.shard=2", "comm.ranks_per_node=2"]
            for rr in ("step", "unit"):
                yield f"hsdp fsdp replica {rr} {n}", n, ["run.mode=fsdp", "balance.scheme=micro",
                                                          f"parallel.replica_reduce={rr}", *hybrid]
            yield f"hsdp odc {n}", n, ["run.mode=odc", "balance.scheme=mini", *hybrid]


def run(name, n, sets, trial):
    stem = os.path.join(tmp, "".join(c if c.isalnum() else "_" for c in name) + f"_{trial}")
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", binary, *common,
           *[a for s in sets for a in ("--set", s)], "--set", f"run.dump={stem}_dump.h5",
           "--out", f"{stem}.h5"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
        raise SystemExit(f"{name}: exit {p.returncode}: {' '.join(cmd)}")
    with h5py.File(f"{stem}_dump.h5") as f:
        params = [f["params"][u][:] for u in sorted(f["params"])]
    with open(f"{stem}.json") as f:
        j = json.load(f)
    return params, j.get("kernel_tuning", "?"), j["provenance"].get("software", {}).get("nccl", "?")


def rel(a, b):
    return max(float(np.linalg.norm(x - y) / np.linalg.norm(y)) for x, y in zip(a, b))


rows, ok, ref = [], True, None
for name, n, sets in cases():
    first, tuning, nccl = run(name, n, sets, 1)
    second, _, _ = run(name, n, sets, 2)
    if ref is None:
        ref = first
    d_one, d_run = rel(first, ref), rel(second, first)
    good = d_one <= TO_ONE_RANK and d_run <= RUN_TO_RUN
    ok &= good
    rows.append({"path": name, "ranks": n, "to_1_rank": d_one, "run_to_run": d_run, "ok": good,
                 "tuning": tuning, "nccl": nccl})
    print(f"{name:34s} ranks {n}  from 1 rank {d_one:.2e}  run to run {d_run:.2e}  "
          f"{'ok' if good else 'FAIL'}", flush=True)
out = os.environ.get("MULTI_RANK_JSON")
if out:
    with open(out, "w") as f:
        json.dump({"tolerance_to_1_rank": TO_ONE_RANK, "tolerance_run_to_run": RUN_TO_RUN,
                   "rows": rows}, f, indent=1)
print("MULTI_RANK", "PASS" if ok else "FAIL", "(functional only: the ranks share one GPU)")
sys.exit(0 if ok else 1)
