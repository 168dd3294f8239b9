"""minipt_analysis on timelines written by the real minipt program.

Needs the session fixture `real_runs` (conftest.py): paths of .h5 files of real runs, at
least one fsdp and one odc run of the same workload and model, either as a list of paths
or as a dict {name: path}. The fixture runs the binary named by MINIPT_BIN; without it
these tests are skipped.
"""

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest

from minipt_analysis import Run, compute_metrics
from minipt_analysis.cli import main
from minipt_analysis.validate import validate

_bin = os.environ.get("MINIPT_BIN")
pytestmark = pytest.mark.skipif(
    not (_bin and os.path.isfile(_bin)),
    reason="MINIPT_BIN unset or missing: no real minipt runs to analyse")


@pytest.fixture(scope="module")
def real_paths(real_runs):
    paths = list(real_runs.values()) if isinstance(real_runs, dict) else list(real_runs)
    paths = [os.fspath(p) for p in paths]
    assert paths, "real_runs yielded no files"
    return paths


@pytest.fixture(scope="module")
def by_mode(real_paths):
    modes = {}
    for path in real_paths:
        with Run(path) as run:
            modes.setdefault(run.mode, []).append(path)
    assert {"fsdp", "odc"} <= set(modes), f"real_runs should cover fsdp and odc, got {modes}"
    return modes


def test_real_files_follow_the_schema_contract(real_paths):
    for path in real_paths:
        with Run(path) as run:
            problems = validate(run)
            assert not problems, f"{path}:\n" + "\n".join(problems)


def test_fallback_toml_reader_reads_the_resolved_config(real_paths):
    tomllib = pytest.importorskip("tomllib")
    from minipt_analysis.runfile import _simple_toml

    with Run(real_paths[0]) as run:
        text = run.attr("config_toml")
    assert _simple_toml(text) == tomllib.loads(text)


def test_recomputed_figures_equal_the_files_summary(real_paths):
    for path in real_paths:
        with Run(path) as run:
            assert run.summary is not None, f"{path} has no /summary"
            m = compute_metrics(run)
            s = run.summary
            assert m.steps_measured == int(s["steps_measured"]), path
            assert m.tokens == int(s["tokens"]), path
            assert m.tokens_per_s == pytest.approx(s["tokens_per_s"], rel=1e-6), path
            assert m.tokens_per_s_per_rank == pytest.approx(s["tokens_per_s_per_rank"],
                                                            rel=1e-6), path
            assert m.step_ms == pytest.approx(s["step_ms"], rel=1e-6), path
            assert m.utilization == pytest.approx(s["utilization"], rel=1e-6, abs=1e-9), path
            assert m.idle_fraction == pytest.approx(s["idle_fraction"], rel=1e-6,
                                                    abs=1e-9), path
            assert m.mfu == pytest.approx(s["mfu"], rel=1e-6, abs=1e-12), path
            np.testing.assert_allclose(m.utilization_per_rank,
                                       run.summary_per_rank["utilization"], rtol=1e-6,
                                       atol=1e-9, err_msg=path)
            np.testing.assert_allclose(m.idle_fraction_per_rank,
                                       run.summary_per_rank["idle_fraction"], rtol=1e-6,
                                       atol=1e-9, err_msg=path)
            # Sanity of the figures themselves.
            assert m.tokens_per_s > 0
            assert (m.utilization_per_rank > 0).all() and (m.utilization_per_rank <= 1).all()


def test_summary_cli_on_real_runs(real_paths, capsys):
    code = main(["summary", *real_paths, "--format", "csv", "--check"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(real_paths)
    assert all(r["source"] == "file" for r in rows)


def test_compare_fsdp_and_odc(by_mode, capsys):
    code = main(["compare", by_mode["fsdp"][0], by_mode["odc"][0], "--strict"])
    out, err = capsys.readouterr()
    assert code == 0, f"fsdp and odc runs of the fixture are not comparable:\n{out}{err}"
    assert "| odc |" in out and "| yes |" in out


def test_figures_trace_and_report_on_real_runs(by_mode, tmp_path, capsys):
    fsdp, odc = by_mode["fsdp"][0], by_mode["odc"][0]
    for args in (["utilization", odc, "-o", str(tmp_path / "u.png")],
                 ["timeline", fsdp, odc, "-o", str(tmp_path / "t.png")],
                 ["timeline", odc, "--ranks", "0", "-o", str(tmp_path / "t0.png")],
                 ["perfetto", odc, "-o", str(tmp_path / "odc.json")]):
        code = main(args)
        _, err = capsys.readouterr()
        assert code == 0, (args, err)
    with open(tmp_path / "odc.json") as f:
        trace = json.load(f)
    with Run(odc) as run:
        n_events = len(run.events)
        world = run.world_size
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == n_events
    assert {e["pid"] for e in complete} == set(range(world))
    for png in ("u.png", "t.png", "t0.png"):
        with open(tmp_path / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_on_real_runs(real_paths, tmp_path, capsys):
    for path in real_paths:
        shutil.copy(path, tmp_path)
    code = main(["report", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 0, err
    with open(tmp_path / "report.html") as f:
        page = f.read()
    # Per run a utilisation figure and, when it has steps, a timeline; plus fsdp-vs-odc.
    assert page.count('<img src="data:image/png;base64,') >= 2 * len(real_paths) + 1
    assert "NOT COMPARABLE" not in page
