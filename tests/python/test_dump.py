"""run.dump: one step's parameters, batch, per-sequence losses and gradients.

The dump must not depend on how the step was split: a 1-rank run and 2-rank fsdp and
odc runs of the real (Kokkos) model dump the same batch, the same initial parameters,
the same per-sequence losses and the same gradients (fp32 tolerance); and its
contents must be self-consistent with the timeline file of the same run.
"""

import subprocess

import h5py
import numpy as np
import pytest

from conftest import minipt_bin, run_minipt

TINY = ["run", "--config", "inputs/models/tiny.toml", "--set", "compute.backend=kokkos",
        "--set", "run.steps=2", "--set", "workload.minibatch_size=6",
        "--set", "workload.distribution=uniform", "--set", "workload.min=40",
        "--set", "workload.max=200", "--set", "balance.token_budget=512", "--quiet"]


def have_kokkos():
    binary = minipt_bin()
    if binary is None:
        return False
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return " kokkos" in out


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    if minipt_bin() is None:
        pytest.skip("MINIPT_BIN unset or missing")
    if not have_kokkos():
        pytest.skip("this minipt build has no Kokkos backend")
    d = tmp_path_factory.mktemp("dump")
    out = {}
    for name, ranks, mode, scheme in [("one", 1, "fsdp", "none"), ("fsdp2", 2, "fsdp", "micro"),
                                      ("odc2", 2, "odc", "mini")]:
        run_minipt(ranks, TINY + ["--set", f"run.mode={mode}", "--set", f"balance.scheme={scheme}",
                                  "--set", f"run.dump={d}/{name}_dump.h5", "--set", "run.dump_step=1",
                                  "--out", f"{d}/{name}.h5"])
        out[name] = (d / f"{name}_dump.h5", d / f"{name}.h5")
    return out


def read(path):
    with h5py.File(path) as f:
        units = sorted(f["params"])
        return {
            "params": [f["params"][u][:] for u in units],
            "grads": [f["grads"][u][:] for u in units],
            "tokens": f["batch/tokens"][:], "lengths": f["batch/lengths"][:],
            "cu": f["batch/cu_seqlens"][:], "loss": f["losses/sequence"][:],
            "vocab": int(f.attrs["model.vocab"]), "hidden": int(f.attrs["model.hidden"]),
            "step": int(f.attrs["step"]),
        }


def test_dump_layout_is_consistent(dumps):
    d = read(dumps["one"][0])
    assert d["step"] == 1
    assert len(d["lengths"]) == 6
    assert d["cu"][0] == 0 and np.array_equal(np.diff(d["cu"]), d["lengths"])
    assert d["cu"][-1] == len(d["tokens"])
    assert d["tokens"].min() >= 0 and d["tokens"].max() < d["vocab"]
    assert len(d["params"]) == len(d["grads"]) == 4  # embedding, 2 blocks, head
    for p, g in zip(d["params"], d["grads"]):
        assert p.shape == g.shape and np.isfinite(g).all()
        assert np.abs(g).max() > 0
    # Embedding rows of tokens that never appear as inputs get no gradient.
    emb = d["grads"][0].reshape(d["vocab"], d["hidden"])
    inputs = np.zeros(d["vocab"], bool)
    for s, e in zip(d["cu"][:-1], d["cu"][1:]):
        inputs[d["tokens"][s:e]] = True
    assert np.abs(emb[~inputs]).max() == 0
    assert np.abs(emb[inputs]).max() > 0


def test_step_loss_is_mean_of_sequence_losses(dumps):
    dump, timeline = dumps["one"]
    d = read(dump)
    assert np.isfinite(d["loss"]).all()
    with h5py.File(timeline) as f:
        steps, loss = f["steps/step"][:], f["steps/loss"][:]
    assert loss[steps == 1][0] == pytest.approx(d["loss"].mean(), rel=1e-5)


@pytest.mark.parametrize("name", ["fsdp2", "odc2"])
def test_dump_independent_of_ranks_and_mode(dumps, name):
    a, b = read(dumps["one"][0]), read(dumps[name][0])
    assert np.array_equal(a["tokens"], b["tokens"])
    assert np.array_equal(a["lengths"], b["lengths"])
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    for pa, pb in zip(a["params"], b["params"]):
        rel = np.linalg.norm(pb - pa) / np.linalg.norm(pa)
        assert rel <= 1e-5
    for ga, gb in zip(a["grads"], b["grads"]):
        rel = np.linalg.norm(gb - ga) / np.linalg.norm(ga)
        assert rel <= 1e-5, f"gradient differs by {rel:.3g} (norm-wise relative)"


def test_peak_memory_is_reported(dumps):
    """Peak memory per rank lands in /summary; its max is the summary attribute."""
    with h5py.File(dumps["fsdp2"][1]) as f:
        per_rank = f["summary/peak_memory_bytes"][:]
        peak = int(f["summary"].attrs["peak_memory_bytes"])
    assert len(per_rank) == 2
    assert (per_rank > 1 << 20).all()  # a process with MPI and a model holds over 1 MiB
    assert peak == per_rank.max()
