"""fsdp and odc on several GPUs against one GPU (cuda backend), through run.dump.

Each run trains the tiny model for 3 steps and dumps step 3: /params are then the
parameters after 3 optimizer steps and /grads the gradient of step 3. Tolerance: every
unit's norm-wise relative difference ≤ 1e-3. Every rank count casts the same fp32
master weights to the same bf16 working copy; what differs is the fp32 summation order
of gradients (reduce-scatter, peer atomics) and how sequences are grouped into
microbatches, which bf16 activations turn into differences of order 1e-4 that AdamW's
first steps (≈ lr·sign(g)) can enlarge for elements whose gradient is near zero. The
bf16 model tolerance against a float64 reference (src/compute/cuda/NOTES.md) is 5e-2;
this check is 50× tighter.

    python tests/gpu/modes_agree.py MINIPT_BIN GPUS
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

binary, gpus = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
common = ["run", "--quiet", "--config", "inputs/experiments/tiny.toml", "--set", "compute.backend=cuda",
          "--set", "run.steps=4", "--set", "run.dump_step=3", "--set", "optim.lr=0.001"]
tmp = tempfile.mkdtemp()
runs = {"1 gpu": (1, "fsdp", "none"), f"fsdp+micro {gpus} gpus": (gpus, "fsdp", "micro"),
        f"odc+mini {gpus} gpus": (gpus, "odc", "mini"), f"odc+micro {gpus} gpus": (gpus, "odc", "micro")}
dumps = {}
for name, (n, mode, scheme) in runs.items():
    path = os.path.join(tmp, name.replace(" ", "_").replace("+", "_") + ".h5")
    subprocess.run(["mpirun", "-n", str(n), "--oversubscribe", binary, *common, "--set", f"run.mode={mode}",
                    "--set", f"balance.scheme={scheme}", "--set", f"run.dump={path}",
                    "--out", path.replace(".h5", "_t.h5")], check=True, env=env)
    with h5py.File(path) as f:
        dumps[name] = ([f["params"][u][:] for u in sorted(f["params"])],
                       [f["grads"][u][:] for u in sorted(f["grads"])], f["losses/sequence"][:])
ref_p, ref_g, ref_l = dumps["1 gpu"]
ok = True
for name, (p, g, l) in dumps.items():
    dp = max(np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(p, ref_p))
    dg = max(np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(g, ref_g))
    dl = np.max(np.abs(l - ref_l) / np.abs(ref_l))
    good = dp <= 1e-3
    ok &= good
    print(f"{name:22s} params after 3 steps: {dp:.2e}  step-3 grads: {dg:.2e}  "
          f"sequence losses: {dl:.2e}  {'ok' if good else 'FAIL'}")
print("MODES_AGREE", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
