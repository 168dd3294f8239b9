"""OTF2 archive of a run (Vampir, Scalasca, otf2-print), written with the OTF2 Python
bindings (Debian python3-otf2, or `otf2` from PyPI).

Layout of the archive:
  system tree     machine > one node per host name > one location group (process) per rank
  locations       one per rank and lane, named "rank R compute", "rank R pull", "rank R push"
                  (CPU threads; accelerator streams on the cuda backend)
  regions         one per event kind and unit ("forward u3", "gather u0", "barrier", ...)
  events          every /events row is an Enter at t_start_ns and a Leave at t_end_ns on its
                  location, timestamps in ns on the run's global clock (timer resolution
                  1 GHz), with the attributes step, microbatch and unit; and in between:
                    gather / reduce_scatter (fsdp): MpiCollectiveBegin / MpiCollectiveEnd
                      (ALLGATHER: S/n bytes sent, S received; REDUCE_SCATTER: S sent, S/n
                      received; S = the event's bytes, n = the shard group) on the
                      communicator of the shard group's pull or push lane
                    get / accumulate (odc): one RmaGet / RmaAtomic (ACCUMULATE) of S/n bytes
                      per owner in the shard group other than the rank itself, on the window
                      "odc parameter shards" / "odc gradient accumulators", completed
                      (RmaOpCompleteBlocking) at t_end_ns
                    barrier, allreduce: MPI collective records (BARRIER, ALLREDUCE) on the
                      compute lanes' communicator; replica_reduce: ALLREDUCE on the
                      communicator of the ranks that hold the same shard
                  compute events with tokens or FLOPs also carry two metric records at
                  t_start_ns: "tokens" (the microbatch's tokens) and "flops" (modelled FLOPs
                  of the event), absolute point values.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import tempfile

import numpy as np

from .perfetto import event_name
from .runfile import AnalysisError, Run, directory_written_whole, new_output_directory
from .waits import shard_group_size

COMPUTE_KINDS = ("forward", "backward", "recompute", "optimizer", "accumulate_grad")


def _otf2():
    try:
        import otf2
    except ImportError as err:
        raise AnalysisError("otf2: the OTF2 Python bindings are not installed (Debian "
                            "python3-otf2, or `pip install otf2`; run/deps.sh installs them): "
                            f"{err}") from None
    return otf2


def _region_role(otf2, kind: str):
    roles = {"gather": otf2.RegionRole.COLL_ALL2ALL,
             "reduce_scatter": otf2.RegionRole.COLL_ALL2ALL,
             "allreduce": otf2.RegionRole.COLL_ALL2ALL,
             "replica_reduce": otf2.RegionRole.COLL_ALL2ALL,
             "barrier": otf2.RegionRole.BARRIER,
             "get": otf2.RegionRole.RMA, "accumulate": otf2.RegionRole.RMA}
    return roles.get(kind, otf2.RegionRole.FUNCTION)


def write_otf2(run: Run, directory: str) -> tuple[int, int]:
    """Writes the archive DIR/traces.otf2 (+ traces.def, traces/); returns (locations,
    events). DIR must not exist: it is written as a temporary directory beside it and
    renamed when complete."""
    otf2 = _otf2()
    directory = new_output_directory(directory)
    ev = run.events
    n = len(ev)
    if n and int(ev["t_start_ns"].min()) < 0:
        raise AnalysisError(f"{run.path}: an event starts before the clock origin "
                            f"({int(ev['t_start_ns'].min())} ns); OTF2 timestamps are unsigned")
    with directory_written_whole(directory) as tmp:
        with _stderr_captured() as captured:
            failure = None
            try:
                locations = _write(otf2, run, tmp)
            except Exception as err:  # noqa: BLE001 - the bindings' own error type
                if type(err).__module__.split(".")[0] not in ("_otf2", "otf2"):
                    raise
                failure = str(err)
            if failure is not None:
                # The failed writer's __del__ retries its close (and reports that it
                # could not): let it do so now, quietly, then say once what went wrong.
                hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
                try:
                    gc.collect()
                finally:
                    sys.unraisablehook = hook
        if failure is None:
            sys.stderr.write(captured())  # whatever the library said on success
        else:
            reasons = re.findall(r"error: ([^:\n]+)", captured())
            raise AnalysisError(f"-o {directory}: cannot write the OTF2 archive "
                                f"({reasons[0] if reasons else failure})")
    return locations, n


@contextlib.contextmanager
def _stderr_captured():
    """Redirects file descriptor 2 (where the OTF2 library prints its errors) to a temp
    file for the block; yields a function returning what was printed. Python's own stderr
    is unaffected where it is not descriptor 2 (under pytest)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        text = []

        def captured() -> str:
            if not text:
                sink.seek(0)
                text.append(sink.read().decode("utf-8", errors="replace"))
            return text[0]
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured()


def _write(otf2, run: Run, path: str) -> int:
    world = run.world_size
    lanes = list(run.lane_names)
    group = shard_group_size(run)
    hosts = [h for h in (run.attr("hosts", "") or "").split(";") if h]
    loc_type = (otf2.LocationType.ACCELERATOR_STREAM if run.backend == "cuda"
                else otf2.LocationType.CPU_THREAD)
    kind_names = list(run.kind_names)

    with otf2.writer.open(path, timer_resolution=1_000_000_000) as trace:
        defs = trace.definitions
        root = defs.system_tree_node("machine")
        nodes = {}
        locs = {}  # (rank, lane) -> Location
        for r in range(world):
            host = hosts[r] if r < len(hosts) else "host"
            if host not in nodes:
                nodes[host] = defs.system_tree_node(host, class_name="node", parent=root)
            lg = defs.location_group(f"rank {r}", system_tree_parent=nodes[host])
            for lane, lane_name in enumerate(lanes):
                locs[r, lane] = defs.location(f"rank {r} {lane_name}", type=loc_type, group=lg)
        # MPI paradigm: compute lanes first, so that a rank's compute location has index
        # R in the communicator of all locations.
        ordered = [locs[r, lane] for lane in range(len(lanes)) for r in range(world)]
        defs.group("all lanes", group_type=otf2.GroupType.COMM_LOCATIONS,
                   paradigm=otf2.Paradigm.MPI, members=ordered)

        def comm(name, members):
            g = defs.group(name, group_type=otf2.GroupType.COMM_GROUP,
                           paradigm=otf2.Paradigm.MPI, members=members)
            return defs.comm(name, group=g)

        pull = lanes.index("pull") if "pull" in lanes else 1
        push = lanes.index("push") if "push" in lanes else 2
        world_comm = comm("world (compute lanes)", [locs[r, 0] for r in range(world)])
        groups = max(world // group, 1)
        pull_comm, push_comm, param_win, grad_win = {}, {}, {}, {}
        for g in range(groups):
            ranks = range(g * group, min((g + 1) * group, world))
            suffix = f" of shard group {g}" if groups > 1 else ""
            pull_comm[g] = comm(f"pull lanes{suffix}", [locs[r, pull] for r in ranks])
            push_comm[g] = comm(f"push lanes{suffix}", [locs[r, push] for r in ranks])
            if run.mode == "odc":
                param_win[g] = defs.rma_win(f"odc parameter shards{suffix}", comm=pull_comm[g])
                grad_win[g] = defs.rma_win(f"odc gradient accumulators{suffix}",
                                           comm=push_comm[g])
        replica_comm = {}
        if groups > 1:
            for j in range(group):
                replica_comm[j] = comm(f"replicas of shard {j} (compute lanes)",
                                       [locs[r, 0] for r in range(j, world, group)])

        attr_step = defs.attribute("step", "training step (0-based)", otf2.Type.INT64)
        attr_mb = defs.attribute("microbatch", "microbatch, -1 if none", otf2.Type.INT64)
        attr_unit = defs.attribute("unit", "model unit, -1 if none", otf2.Type.INT64)
        m_tokens = defs.metric("tokens", "tokens of the microbatch", unit="tokens",
                               value_type=otf2.Type.INT64,
                               metric_mode=otf2.MetricMode.ABSOLUTE_POINT)
        m_flops = defs.metric("flops", "modelled FLOPs of the event", unit="FLOP",
                              value_type=otf2.Type.DOUBLE,
                              metric_mode=otf2.MetricMode.ABSOLUTE_POINT)
        regions = {}

        def region(kind: str, unit: int):
            key = (kind, unit)
            if key not in regions:
                collective = kind in ("gather", "reduce_scatter", "get", "accumulate",
                                      "barrier", "allreduce", "replica_reduce")
                regions[key] = defs.region(
                    event_name(kind, unit, -1), description=f"minipt {kind} events",
                    region_role=_region_role(otf2, kind),
                    paradigm=otf2.Paradigm.MPI if collective else otf2.Paradigm.USER)
            return regions[key]

        ev = run.events
        if not len(ev):
            return len(locs)
        rank = ev["rank"].astype(np.int64)
        lane = ev["lane"].astype(np.int64)
        order = np.lexsort((ev["t_end_ns"], ev["t_start_ns"], lane, rank))
        cols = {c: ev[c][order].tolist() for c in ("rank", "lane", "step", "microbatch",
                                                   "unit", "t_start_ns", "t_end_ns", "bytes",
                                                   "tokens")}
        cols["kind"] = (ev["kind"][order].astype(np.int64) & 0xFF).tolist()
        cols["flops"] = np.nan_to_num(ev["flops"][order].astype(np.float64)).tolist()
        ALLGATHER, RS = otf2.CollectiveOp.ALLGATHER, otf2.CollectiveOp.REDUCE_SCATTER
        undefined_root = otf2.Undefined.UINT32 if hasattr(otf2.Undefined, "UINT32") else 0xFFFFFFFF
        matching = 0
        writers = {}
        for i in range(len(order)):
            r, la, k = cols["rank"][i], cols["lane"][i], cols["kind"][i]
            kind = kind_names[k] if k < len(kind_names) else f"kind{k}"
            t0, t1 = cols["t_start_ns"][i], cols["t_end_ns"][i]
            unit, nbytes = cols["unit"][i], cols["bytes"][i]
            w = writers.get((r, la))
            if w is None:
                w = writers[r, la] = trace.event_writer_from_location(locs[r, la])
            reg = region(kind, unit)
            w.enter(t0, reg, attributes={attr_step: cols["step"][i],
                                         attr_mb: cols["microbatch"][i], attr_unit: unit})
            g = r // group
            members = min(group, world)
            if kind in COMPUTE_KINDS and (cols["tokens"][i] or cols["flops"][i]):
                w.metric(t0, m_tokens, cols["tokens"][i])
                w.metric(t0, m_flops, cols["flops"][i])
            if kind in ("gather", "reduce_scatter") and run.mode != "odc":
                c = pull_comm[g] if kind == "gather" else push_comm[g]
                shard = nbytes // members
                sent, received = (shard, nbytes) if kind == "gather" else (nbytes, shard)
                w.mpi_collective_begin(t0)
                w.mpi_collective_end(t1, ALLGATHER if kind == "gather" else RS, c,
                                     undefined_root, sent, received)
            elif kind in ("get", "accumulate") and run.mode == "odc":
                win = param_win[g] if kind == "get" else grad_win[g]
                ids = []
                for owner in range(members):
                    if g * group + owner == r:
                        continue
                    matching += 1
                    ids.append(matching)
                    if kind == "get":
                        w.rma_get(t0, win, owner, nbytes // members, matching)
                    else:
                        w.rma_atomic(t0, win, owner, otf2.RmaAtomicType.ACCUMULATE,
                                     nbytes // members, 0, matching)
                for m in ids:
                    w.rma_op_complete_blocking(t1, win, m)
            elif kind in ("barrier", "allreduce") or (kind == "replica_reduce"
                                                      and replica_comm):
                c = replica_comm[r % group] if kind == "replica_reduce" else world_comm
                op = otf2.CollectiveOp.BARRIER if kind == "barrier" else \
                    otf2.CollectiveOp.ALLREDUCE
                w.mpi_collective_begin(t0)
                w.mpi_collective_end(t1, op, c, undefined_root, nbytes, nbytes)
            w.leave(t1, reg)
    return len(locs)
