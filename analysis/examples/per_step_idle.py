"""Per-step idle share of every rank, from the Python API.

    python analysis/examples/per_step_idle.py RUN.h5

Prints, for each step, the share of the global step time each rank spent outside
compute-busy events (the bubble), and which rank set the step's pace.
"""

import sys

from minipt_analysis import Run, compute_metrics

with Run(sys.argv[1]) as run:
    m = compute_metrics(run)
    busy = m.breakdown_ns[:, :, 0]  # (rank, step) compute-busy ns
    idle = 1.0 - busy / m.step_ns[None, :].clip(min=1)
    print(run.title())
    print("step  " + " ".join(f"r{r:<5d}" for r in range(m.world_size)) + " busiest  step ms")
    for i, step in enumerate(m.steps):
        marks = " ".join(f"{100 * idle[r, i]:5.1f}%" for r in range(m.world_size))
        warm = "" if m.measured[i] else "  (warm-up)"
        print(f"{step:4d}  {marks}  r{int(busy[:, i].argmax()):<6d} {m.step_ns[i] / 1e6:8.2f}"
              f"{warm}")
