"""Synthetic minipt timelines, schema-conformant, for benchmarks and demonstrations.

    python -m minipt_analysis.synth -o big.h5 --events 1000000 --ranks 8 --mode odc

The timeline imitates a layer-wise data-parallel step: per microbatch, forward over units
0..L+1, then backward from L+1 down to 0 with a recompute before every block's backward;
the pull lane fetches a unit's parameters just before its forward/recompute (a compute
'wait' appears where the fetch is late); the push lane ships gradients after each
backward; every step ends with a sync (odc: barrier, fsdp: allreduce) that lines the
ranks up, and the optimizer. Durations are random (seeded), not measured: the file is
for exercising the analysis at scale, never for performance conclusions. Its /summary is
computed here from the generator's own bookkeeping (durations it drew, windows it laid
out), not from the events, so reading the file back checks the analysis against it.
"""

from __future__ import annotations

import argparse
import datetime
import sys

import h5py
import numpy as np

from .runfile import DEFAULT_KIND_NAMES, DEFAULT_LANE_NAMES, file_written_whole

KIND = {name: code for code, name in enumerate(DEFAULT_KIND_NAMES)}


def _template(layers: int):
    """Compute-lane slots of one microbatch: (kind code, unit) arrays."""
    head = layers + 1
    kinds = [KIND["forward"]] * (layers + 2)
    units = list(range(layers + 2))
    kinds.append(KIND["backward"])
    units.append(head)
    for unit in range(layers, 0, -1):
        kinds += [KIND["recompute"], KIND["backward"]]
        units += [unit, unit]
    kinds.append(KIND["backward"])
    units.append(0)
    return np.array(kinds, dtype=np.int64), np.array(units, dtype=np.int64)


def generate(path: str, *, events: int = 1_000_000, ranks: int = 8, layers: int = 28,
             microbatches: int = 4, mode: str = "odc", seed: int = 1, warmup: int = 1,
             steps: int | None = None) -> int:
    """Writes the file; returns the number of events."""
    rng = np.random.default_rng(seed)
    slot_kind, slot_unit = _template(layers)
    per_mb = len(slot_kind)

    # Relative cost of a unit (embedding cheap, head expensive), in ns per token.
    unit_cost = np.full(layers + 2, 60.0)
    unit_cost[0], unit_cost[-1] = 8.0, 140.0
    kind_factor = np.ones(256)
    kind_factor[KIND["backward"]] = 2.0
    unit_bytes = np.full(layers + 2, 93_000_000, dtype=np.int64)
    unit_bytes[0] = unit_bytes[-1] = 466_000_000

    columns = {k: [] for k in ("rank", "step", "microbatch", "unit", "kind", "lane",
                               "t_start_ns", "t_end_ns", "bytes", "tokens", "flops")}
    step_rows = {k: [] for k in ("step", "rank", "tokens", "microbatches", "t_start_ns",
                                 "t_end_ns", "compute_ns", "loss")}
    workload_rows = {k: [] for k in ("step", "rank", "microbatch", "sequence", "length")}

    written = [0]

    def add(rank, step, mb, unit, kind, lane, t0, t1, nbytes, tokens, flops):
        n = len(t0)
        written[0] += n
        columns["rank"].append(np.full(n, rank, np.int32))
        columns["step"].append(np.full(n, step, np.int32))
        columns["microbatch"].append(np.broadcast_to(mb, (n,)).astype(np.int32))
        columns["unit"].append(np.broadcast_to(unit, (n,)).astype(np.int32))
        columns["kind"].append(np.broadcast_to(kind, (n,)).astype(np.int8))
        columns["lane"].append(np.full(n, lane, np.int8))
        columns["t_start_ns"].append(np.asarray(t0, np.int64))
        columns["t_end_ns"].append(np.asarray(t1, np.int64))
        columns["bytes"].append(np.broadcast_to(nbytes, (n,)).astype(np.int64))
        columns["tokens"].append(np.broadcast_to(tokens, (n,)).astype(np.int64))
        columns["flops"].append(np.broadcast_to(flops, (n,)).astype(np.float64))

    clock = 0
    step = -1
    measured_flops = 0.0
    # Without an explicit step count, add steps until the requested event count is reached.
    while True:
        step += 1
        if steps is not None and step >= steps:
            break
        if steps is None and written[0] >= events and step > warmup:
            break
        step_start = clock
        bodies = []
        sequence_index = 0
        for rank in range(ranks):
            # The sequences depend on (seed, step, rank) only, so an fsdp and an odc file
            # made with one seed hold the same tokens (and `compare` accepts them).
            workload_rng = np.random.default_rng([seed, step, rank])
            n_sequences = int(workload_rng.integers(microbatches, 3 * microbatches + 1))
            lengths = np.maximum(64, workload_rng.lognormal(np.log(2048), 0.8, n_sequences))
            lengths = lengths.astype(np.int64)
            # fsdp: the same microbatch count everywhere; odc: as many as the tokens need.
            m = microbatches if mode == "fsdp" else int(
                np.clip(np.rint(lengths.sum() / 5000), 1, n_sequences))
            seq_mb = np.arange(n_sequences) % m
            mb_tokens = np.bincount(seq_mb, weights=lengths, minlength=m).astype(np.int64)
            workload_rows["step"].append(np.full(len(lengths), step, np.int32))
            workload_rows["rank"].append(np.full(len(lengths), rank, np.int32))
            workload_rows["microbatch"].append(seq_mb.astype(np.int32))
            workload_rows["sequence"].append(
                np.arange(sequence_index, sequence_index + len(lengths), dtype=np.int32))
            workload_rows["length"].append(lengths)
            sequence_index += len(lengths)

            kind = np.tile(slot_kind, m)
            unit = np.tile(slot_unit, m)
            mb = np.repeat(np.arange(m), per_mb)
            tokens = mb_tokens[mb]
            dur = (unit_cost[unit] * kind_factor[kind] * tokens *
                   rng.lognormal(0.0, 0.15, size=len(kind))).astype(np.int64) + 1000
            is_pull = (kind == KIND["forward"]) | (kind == KIND["recompute"])
            late = is_pull & (rng.random(len(kind)) < 0.25)
            wait = np.where(late, (rng.exponential(0.3, len(kind)) * dur).astype(np.int64), 0)
            # Compute-lane layout: [wait] compute, back to back.
            c_start = step_start + np.cumsum(wait + dur) - dur
            c_end = c_start + dur
            # Modelled FLOPs as if the kernels ran at 60% of the 989 TFLOP/s peak.
            flops = 0.6 * 989e12 * dur * 1e-9
            add(rank, step, mb, unit, kind, 0, c_start, c_end, 0, tokens, flops)
            w = wait > 0
            add(rank, step, mb[w], unit[w], KIND["wait"], 0, c_start[w] - wait[w], c_start[w],
                0, 0, 0.0)
            # Pull lane: each fetch ends when its compute starts; it starts earlier by a
            # random transfer time (longer than the wait it caused), after the previous one.
            p_idx = np.flatnonzero(is_pull)
            p_end = c_start[p_idx]
            p_len = np.maximum((rng.uniform(0.3, 0.9, len(p_idx)) * dur[p_idx]).astype(np.int64),
                               wait[p_idx] + 500)
            prev_end = np.concatenate(([step_start], p_end[:-1]))
            p_start = np.minimum(np.maximum(p_end - p_len, prev_end), p_end)
            pull_kind = KIND["get"] if mode == "odc" else KIND["gather"]
            add(rank, step, mb[p_idx], unit[p_idx], pull_kind, 1, p_start, p_end,
                unit_bytes[unit[p_idx]] // ranks * (ranks - 1), 0, 0.0)
            # Push lane: each gradient push starts when its backward ends.
            b_idx = np.flatnonzero(kind == KIND["backward"])
            q_start = c_end[b_idx]
            q_len = (rng.uniform(0.4, 1.2, len(b_idx)) * dur[b_idx]).astype(np.int64)
            next_start = np.concatenate((q_start[1:], [q_start[-1] + q_len[-1]]))
            q_end = np.minimum(q_start + q_len, next_start)
            push_kind = KIND["accumulate"] if mode == "odc" else KIND["reduce_scatter"]
            add(rank, step, mb[b_idx], unit[b_idx], push_kind, 2, q_start, q_end,
                unit_bytes[unit[b_idx]] // ranks * (ranks - 1), 0, 0.0)
            body_end = max(int(c_end[-1]), int(q_end[-1]))
            busy = int(dur.sum())
            model_flops = float(flops[kind != KIND["recompute"]].sum())
            if mode == "odc":
                grad_ns = int(rng.integers(200_000, 400_000))
                add(rank, step, -1, -1, KIND["accumulate_grad"], 0, [body_end],
                    [body_end + grad_ns], 0, 0, 0.0)
                body_end += grad_ns
                busy += grad_ns
            bodies.append((rank, body_end, busy, int(mb_tokens.sum()), m))
            if step >= warmup:
                measured_flops += model_flops

        sync_end = max(b[1] for b in bodies) + 50_000
        step_end = step_start
        for rank, body_end, busy, rank_tokens, m in bodies:
            t = body_end
            if mode == "odc":
                add(rank, step, -1, -1, KIND["barrier"], 0, [t], [sync_end], 0, 0, 0.0)
                t = sync_end
                ar_end = t + 30_000
            else:
                ar_end = sync_end
            add(rank, step, -1, -1, KIND["allreduce"], 0, [t], [ar_end], 8, 0, 0.0)
            opt_ns = int(rng.integers(900_000, 1_100_000))
            add(rank, step, -1, -1, KIND["optimizer"], 0, [ar_end], [ar_end + opt_ns], 0, 0, 0.0)
            end = ar_end + opt_ns
            step_end = max(step_end, end)
            for key, value in (("step", step), ("rank", rank), ("tokens", rank_tokens),
                               ("microbatches", m), ("t_start_ns", step_start),
                               ("t_end_ns", end), ("compute_ns", busy + opt_ns),
                               ("loss", 10.0 * np.exp(-0.05 * step))):
                step_rows[key].append(value)
        clock = step_end + 20_000

    table = {k: np.concatenate(v) for k, v in columns.items()}
    order = np.lexsort((table["t_start_ns"], table["lane"], table["rank"]))
    table = {k: v[order] for k, v in table.items()}
    n_events = len(order)

    config = (f'[model]\nname = "synthetic"\nlayers = {layers}\nhidden = 1536\n\n'
              f'[workload]\nname = "synthetic-lognormal"\n\n[train]\nmode = "{mode}"\n'
              f"steps = {step}\nwarmup_steps = {warmup}\nseed = {seed}\n")
    # Through a temp renamed when complete (runfile.file_written_whole), as every output.
    with file_written_whole(path, "timeline", binary=True) as out, h5py.File(out, "w") as f:
        attrs = {"schema_version": np.int32(1), "minipt_version": "synthetic",
                 "git_revision": "none", "config_toml": config, "mode": mode,
                 "balance": "mini" if mode == "odc" else "micro", "backend": "emulated",
                 "workload": "synthetic-lognormal", "world_size": np.int32(ranks),
                 "hosts": ";".join(["localhost"] * ranks),
                 "devices": ";".join(["synthetic"] * ranks),
                 "clock_error_bound_ns": np.int64(0), "peak_tflops": np.float64(989.0),
                 "warmup_steps": np.int32(warmup),
                 "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        for key, value in attrs.items():
            f.attrs[key] = value
        group = f.create_group("events")
        group.attrs["kind_names"] = np.array(DEFAULT_KIND_NAMES, dtype=h5py.string_dtype())
        group.attrs["lane_names"] = np.array(DEFAULT_LANE_NAMES, dtype=h5py.string_dtype())
        _write_table(group, table)
        _write_table(f.create_group("workload"),
                     {k: np.concatenate(v) for k, v in workload_rows.items()})
        dtypes = {"step": np.int32, "rank": np.int32, "tokens": np.int64,
                  "microbatches": np.int32, "t_start_ns": np.int64, "t_end_ns": np.int64,
                  "compute_ns": np.int64, "loss": np.float64}
        _write_table(f.create_group("steps"),
                     {k: np.asarray(v, dtype=dtypes[k]) for k, v in step_rows.items()})
        _write_summary(f, step_rows, ranks, warmup, measured_flops, peak_tflops=989.0)
    return n_events


def _write_summary(f, step_rows, ranks: int, warmup: int, model_flops: float,
                   peak_tflops: float) -> None:
    """The README's figures from the generator's own step windows and busy times."""
    step = np.asarray(step_rows["step"])
    rank = np.asarray(step_rows["rank"])
    measured = step >= warmup
    n_steps = int(step.max()) + 1
    starts = np.asarray(step_rows["t_start_ns"]).reshape(n_steps, ranks)
    ends = np.asarray(step_rows["t_end_ns"]).reshape(n_steps, ranks)
    global_ns = ends.max(axis=1) - starts.min(axis=1)
    wall_ns = int(global_ns[warmup:].sum())
    tokens = int(np.asarray(step_rows["tokens"])[measured].sum())
    busy = np.bincount(rank[measured], weights=np.asarray(step_rows["compute_ns"])[measured],
                       minlength=ranks)
    utilization = busy / wall_ns
    group = f.create_group("summary")
    tokens_per_s = tokens / (wall_ns * 1e-9)
    for key, value in (("tokens_per_s", tokens_per_s),
                       ("tokens_per_s_per_rank", tokens_per_s / ranks),
                       ("step_ms", wall_ns / (n_steps - warmup) * 1e-6),
                       ("utilization", float(utilization.mean())),
                       ("idle_fraction", 1.0 - float(utilization.mean())),
                       ("mfu", model_flops / (wall_ns * 1e-9 * ranks * peak_tflops * 1e12))):
        group.attrs[key] = np.float64(value)
    group.attrs["steps_measured"] = np.int64(n_steps - warmup)
    group.attrs["tokens"] = np.int64(tokens)
    group.create_dataset("utilization", data=utilization.astype(np.float64))
    group.create_dataset("idle_fraction", data=(1.0 - utilization).astype(np.float64))


def _write_table(group, columns: dict) -> None:
    for name, values in columns.items():
        chunk = (min(max(len(values), 1), 65536),)
        group.create_dataset(name, data=values, chunks=chunk, compression="gzip",
                             compression_opts=4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minipt_analysis.synth",
                                     description="write a synthetic minipt timeline")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="minimum number of events: whole steps are added until reached")
    parser.add_argument("--steps", type=int, default=None, help="overrides --events")
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--microbatches", type=int, default=4)
    parser.add_argument("--mode", choices=("odc", "fsdp"), default="odc")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n = generate(args.output, events=args.events, ranks=args.ranks, layers=args.layers,
                 microbatches=args.microbatches, mode=args.mode, seed=args.seed,
                 warmup=args.warmup, steps=args.steps)
    print(f"wrote {args.output}: {n} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
