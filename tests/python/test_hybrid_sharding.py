"""Hybrid sharding (parallel.shard = S): units sharded over groups of S consecutive ranks,
replicated across the world/S groups, gradient shards summed across replicas after the
last microbatch.

The real (Kokkos) model, 3 steps: 4 ranks (S=2), 6 (S=3) and 8 (S=4), fsdp and odc with
each allowed balancing scheme, against a 1-rank run: the parameters before the last step
and its gradients (run.dump at step 2) agree norm-wise within 1e-5. The timeline has one
replica_reduce event per rank and step; comm.ranks_per_node = 2 leaves results unchanged;
S that does not divide the world is exit 2 naming both numbers. parallel.replica_reduce =
"unit" (fsdp: each unit's slice summed across replicas during the backward) trains the same.
With declared 2-rank nodes (comm.ranks_per_node = 2) on 4 and 8 ranks the run reports, per
peer class of the shard group (same node / other node), the one-sided and collective
transport (header line, .h5 root attributes, NAME.json), and the results are unchanged.
"""

import json

import h5py
import numpy as np
import pytest

from conftest import minipt_bin, run_minipt
from test_dump import have_kokkos

import minipt_runner as mr

TINY = ["run", "--config", "inputs/models/tiny.toml", "--set", "compute.backend=kokkos",
        "--set", "run.steps=3", "--set", "workload.minibatch_size=24",
        "--set", "workload.distribution=uniform", "--set", "workload.min=40",
        "--set", "workload.max=200", "--set", "balance.token_budget=512",
        "--set", "run.dump_step=2", "--quiet"]

pytestmark = pytest.mark.skipif(minipt_bin() is None or not have_kokkos(),
                                reason="needs MINIPT_BIN with the Kokkos backend")


def arrays(path):
    with h5py.File(path) as f:
        return ([f["params"][u][:] for u in sorted(f["params"])],
                [f["grads"][u][:] for u in sorted(f["grads"])])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("hsdp")
    run_minipt(1, TINY + ["--set", f"run.dump={d}/one_dump.h5", "--out", f"{d}/one.h5"])
    return d, arrays(d / "one_dump.h5")


CASES = [(ranks, shard, mode, scheme, "step")
         for ranks, shard in ((4, 2), (6, 3), (8, 4))
         for mode, scheme in (("fsdp", "micro"), ("fsdp", "none"), ("fsdp", "localsort"),
                              ("odc", "mini"), ("odc", "micro"))]
CASES += [(ranks, shard, "fsdp", scheme, "unit")
          for ranks, shard in ((4, 2), (6, 3), (8, 4)) for scheme in ("micro", "none")]


@pytest.mark.parametrize("ranks,shard,mode,scheme,reduce", CASES,
                         ids=[f"{r}ranks-S{s}-{m}-{b}-{x}" for r, s, m, b, x in CASES])
def test_hybrid_sharding_agrees_with_one_rank(reference, ranks, shard, mode, scheme, reduce):
    d, (p1, g1) = reference
    name = f"{mode}_{scheme}_{ranks}_{shard}_{reduce}"
    run_minipt(ranks, TINY + ["--set", f"parallel.shard={shard}", "--set", f"run.mode={mode}",
                              "--set", f"balance.scheme={scheme}",
                              "--set", f"parallel.replica_reduce={reduce}",
                              "--set", f"run.dump={d}/{name}_dump.h5", "--out", f"{d}/{name}.h5"])
    p, g = arrays(d / f"{name}_dump.h5")
    for a, b in zip(p1, p):
        assert np.linalg.norm(b - a) / np.linalg.norm(a) <= 1e-5
    for a, b in zip(g1, g):
        assert np.linalg.norm(b - a) / np.linalg.norm(a) <= 1e-5
    with h5py.File(d / f"{name}.h5") as f:
        assert f.attrs["schema_version"] == 4
        # odc's gradients are final only after its barrier: it always reduces per step.
        assert f.attrs["replica_reduce"] == (reduce if mode == "fsdp" else "step")
        assert f.attrs["replica_transport"] == "mpi"
        names = [n.decode() if isinstance(n, bytes) else n for n in f["events"].attrs["kind_names"]]
        kinds = f["events/kind"][:]
        reduces = (kinds == names.index("replica_reduce")).sum()
        assert reduces == ranks * 3, reduces
        # Collectives move one shard group's unit: bytes of a gather are the padded unit.
        gathers = kinds == names.index("gather" if mode == "fsdp" else "get")
        assert gathers.sum() > 0


def test_declared_nodes_leave_results_unchanged(reference):
    d, (p1, g1) = reference
    run_minipt(8, TINY + ["--set", "parallel.shard=2", "--set", "comm.ranks_per_node=2",
                          "--set", "run.mode=odc", "--set", "balance.scheme=mini",
                          "--set", f"run.dump={d}/nodes_dump.h5", "--out", f"{d}/nodes.h5"])
    p, g = arrays(d / "nodes_dump.h5")
    for a, b in zip(g1, g):
        assert np.linalg.norm(b - a) / np.linalg.norm(a) <= 1e-5


# (ranks, shard) with 2-rank nodes → what the shard group reaches each peer class with.
PEER_CASES = [(4, 0, "mpi", "mpi"),     # one group over both nodes
              (4, 2, "mpi", "none"),    # a group per node
              (8, 4, "mpi", "mpi"),     # groups of two nodes, 2 replicas
              (8, 2, "mpi", "none")]    # a group per node, 4 replicas


@pytest.mark.parametrize("ranks,shard,same,other", PEER_CASES,
                         ids=[f"{r}ranks-S{s}" for r, s, _, _ in PEER_CASES])
def test_per_peer_transports_are_reported(reference, ranks, shard, same, other):
    d, (p1, g1) = reference
    name = f"peers_{ranks}_{shard}"
    proc = run_minipt(ranks, [a for a in TINY if a != "--quiet"] + [
        "--set", f"parallel.shard={shard}", "--set", "comm.ranks_per_node=2",
        "--set", "run.mode=fsdp", "--set", f"run.dump={d}/{name}_dump.h5",
        "--out", f"{d}/{name}.h5"])
    header = proc.stdout.splitlines()[0]
    assert "nodes %dx2" % (ranks // 2) in header, header
    want = {"same node": same, "other node": other}
    for peer, transport in want.items():
        text = ("%s: none" % peer if transport == "none"
                else "%s: onesided %s, collectives %s" % (peer, transport, transport))
        assert text in header, (text, header)
    replicas = ranks // (shard or ranks)
    assert ("replica reduce per step over mpi" in header) == (replicas > 1), header
    summary = json.loads((d / f"{name}.json").read_text())
    with h5py.File(d / f"{name}.h5") as f:
        for source in (f.attrs, summary):
            assert source["onesided_same_node"] == same
            assert source["collectives_same_node"] == same
            assert source["onesided_other_node"] == other
            assert source["collectives_other_node"] == other
            assert source["replica_reduce"] == ("step" if replicas > 1 else "none")
            assert source["replica_transport"] == ("mpi" if replicas > 1 else "none")
    p, g = arrays(d / f"{name}_dump.h5")
    for a, b in zip(p1, p):
        assert np.linalg.norm(b - a) / np.linalg.norm(a) <= 1e-5
    for a, b in zip(g1, g):
        assert np.linalg.norm(b - a) / np.linalg.norm(a) <= 1e-5


def test_shard_must_divide_the_world(tmp_path):
    out = tmp_path / "x.h5"
    proc = mr.run_minipt(TINY + ["--set", "parallel.shard=3", "--out", str(out)], ranks=4)
    assert proc.returncode == 2, proc.stderr
    assert "parallel.shard" in proc.stderr and "= 3" in proc.stderr and "4" in proc.stderr
    assert not out.exists()


def test_plan_bound_of_hybrid_sharding_is_the_slowest_group():
    """With S < world, fsdp only waits for its own group inside the step: the bound of
    fsdp can only fall (odc's is unchanged), so the ratio cannot rise."""
    base = ["plan", "--config", mr.DEMO_CONFIG, "--ranks", "8", "--set",
            "workload.minibatch_size=64", "--set", "run.mode=odc", "--set", "balance.scheme=mini"]
    full = mr.parse_bound(mr.run_minipt(base, check=True).stdout)
    hybrid = mr.parse_bound(mr.run_minipt(base + ["--set", "parallel.shard=2"], check=True).stdout)
    assert hybrid["fsdp_ms"] <= full["fsdp_ms"] + 1e-9
    assert abs(hybrid["odc_ms"] - full["odc_ms"]) < 1e-9
    with pytest.raises(AssertionError):
        mr.run_minipt(base + ["--set", "parallel.shard=3"], check=True)
