"""model.recompute through `minipt run`: a block count recomputes the first blocks only,
the run header says how many, and the training is the same as with every block or none
recomputing (the Kokkos backend runs the same operations on the same inputs)."""
import json
import os

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

TINY = os.path.join(mr.INPUTS, "experiments", "tiny.toml")


def run(tmp_path, value, ranks=None):
    out = tmp_path / ("r%s.h5" % value)
    proc = mr.run_minipt(["run", "--config", TINY, "--set", "run.steps=2", "--set",
                          "model.layers=3", "--set", "model.recompute=%s" % value,
                          "--out", str(out)], ranks=ranks, check=True)
    header = proc.stdout.splitlines()[0]
    summary = json.loads(out.with_suffix(".json").read_text())
    return header, summary["verification"]


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    header, got = run(tmp_path_factory.mktemp("every"), "true")
    assert "recompute 3 of 3 blocks" in header, header
    return got


@pytest.mark.parametrize("value,blocks", [("false", 0), ("1", 1), ("auto", 3)])
def test_a_block_count_changes_what_is_recomputed_not_the_result(tmp_path, every, value, blocks):
    header, got = run(tmp_path, value)
    assert "recompute %d of 3 blocks" % blocks in header, header
    assert got["losses"] == every["losses"]
    assert got["parameter_norm"] == every["parameter_norm"]
