"""run/paper/: each figure's script at its --smoke size (one small point, simulated):
exits 0, prints the table with every column, writes the .md and the .png."""

import os
import subprocess

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

FIGURES = ["sft-grid", "rl", "parametric", "internode", "hsdp"]
COLUMNS = ["model", "workload", "seq/GPU", "GPUs", "source", "fsdp+localsort tok/s",
           "fsdp+micro tok/s", "odc+micro tok/s", "odc+mini tok/s", "odc+mini speedup", "bound"]


@pytest.mark.parametrize("figure", FIGURES)
def test_paper_script_smoke(tmp_path, figure):
    script = os.path.join(mr.REPO_ROOT, "run", "paper", figure)
    p = subprocess.run([script, "--smoke", "--out", str(tmp_path), "--minipt", mr.minipt_bin()],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    header = p.stdout.splitlines()[0]
    for c in COLUMNS:
        assert c in header, (c, header)
    rows = [l for l in p.stdout.splitlines() if l.startswith("| qwen")]
    assert rows, p.stdout
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert len(cells) == len(header.strip("|").split("|"))
        assert float(cells[COLUMNS.index("bound") + 1]) >= 1.0 - 1e-9  # + the "extra" column
    assert (tmp_path / (figure + ".md")).exists() and (tmp_path / (figure + ".png")).exists()
