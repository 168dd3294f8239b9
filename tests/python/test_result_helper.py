"""run/lib/result: the one reader of a run's JSON summary for the scripts under run/ (they
never parse the console): a dotted key's value, --format, standard input (`minipt plan
--json`), exit 2 naming the file or key when either is missing, use from Python, and
--performance, which must give minipt's own PERFORMANCE line byte for byte (run, untraced
run, simulate). Also checks that no script under run/ greps a PERFORMANCE line.

Needs MINIPT_BIN for the tests that run minipt.
"""

import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess

import pytest

import minipt_runner as mr

HELPER = os.path.join(mr.REPO_ROOT, "run", "lib", "result")
SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=4"]
needs_minipt = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")
DOC = {"mode": "odc", "world_size": 4, "summary": {"tokens_per_s": 1234.5678, "utilization": None,
                                                   "step_seconds": [0.5, 0.25]},
       "provenance": {"ranks": [{"host": "a"}, {"host": "b"}]}}


def helper(*args, stdin=None):
    return subprocess.run([HELPER, *args], capture_output=True, text=True, input=stdin, timeout=30)


@pytest.fixture
def doc(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(DOC))
    return str(path)


@pytest.mark.parametrize("key,extra,want", [
    ("mode", [], "odc"),
    ("world_size", [], "4"),
    ("summary.tokens_per_s", [], "1234.5678"),
    ("summary.tokens_per_s", ["--format", ".1f"], "1234.6"),
    ("summary.utilization", ["--format", ".4f"], "n/a"),
    ("summary.step_seconds", [], "[0.5, 0.25]"),
    ("provenance.ranks.1.host", [], "b"),
])
def test_reads_a_key(doc, key, extra, want):
    proc = helper(doc, key, *extra)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == want + "\n" and proc.stderr == ""


def test_reads_standard_input():
    proc = helper("-", "summary.tokens_per_s", "--format", ".2f", stdin=json.dumps(DOC))
    assert proc.returncode == 0 and proc.stdout == "1234.57\n", proc.stderr


@pytest.mark.parametrize("key,names", [
    ("summary.tokens", ["summary.tokens", "tokens_per_s"]),
    ("nope", ["'nope'", "the top level"]),
    ("provenance.ranks.2.host", ["provenance.ranks.2.host", "'2'"]),
    ("mode.x", ["mode.x", "str"]),
])
def test_missing_key_is_exit_2_naming_it(doc, key, names):
    proc = helper(doc, key)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("result: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for name in names:
        assert name in proc.stderr, proc.stderr
    assert doc in proc.stderr


def test_missing_or_broken_file_is_exit_2_naming_it(tmp_path):
    missing = str(tmp_path / "absent.json")
    proc = helper(missing, "mode")
    assert proc.returncode == 2 and missing in proc.stderr and "No such file" in proc.stderr
    broken = tmp_path / "half.json"
    broken.write_text('{"mode": ')
    proc = helper(str(broken), "mode")
    assert proc.returncode == 2 and str(broken) in proc.stderr and "not JSON" in proc.stderr
    for args in ([], [missing], [missing, "a", "b"], [missing, "mode", "--format"]):
        proc = helper(*args)
        assert proc.returncode == 2 and proc.stderr.startswith("result: error: "), args


def test_usable_from_python(doc):
    loader = importlib.machinery.SourceFileLoader("result", HELPER)
    result = importlib.util.module_from_spec(importlib.util.spec_from_loader("result", loader))
    loader.exec_module(result)
    assert result.value(result.load(doc), "summary.tokens_per_s") == 1234.5678
    with pytest.raises(result.ResultError, match="summary.nope"):
        result.value(result.load(doc), "summary.nope")


def _performance_matches(args, ranks, tmp_path):
    out = tmp_path / "r.h5"
    proc = mr.run_minipt(args + ["--out", str(out), "--quiet"], ranks=ranks)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = [l for l in proc.stdout.splitlines() if l.startswith("PERFORMANCE ")]
    rebuilt = helper(str(out.with_suffix(".json")), "--performance")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert [rebuilt.stdout.rstrip("\n")] == printed
    return printed[0]


@needs_minipt
def test_performance_line_is_minipts_for_a_run(tmp_path):
    _performance_matches(["run", "--config", mr.DEMO_CONFIG] + SHORT, 2, tmp_path)


@needs_minipt
def test_performance_line_is_minipts_for_an_untraced_run(tmp_path):
    line = _performance_matches(["run", "--config", mr.DEMO_CONFIG, "--set", "run.trace=false"] +
                                SHORT, 2, tmp_path)
    assert "utilization=n/a" in line


@needs_minipt
def test_performance_line_is_minipts_for_a_simulation(tmp_path):
    _performance_matches(["simulate", "--config", mr.DEMO_CONFIG, "--ranks", "32", "--set",
                          "workload.minibatch_size=64", "--set", "run.steps=2"], None, tmp_path)


def test_no_script_under_run_greps_the_console():
    """Scripts read results from the JSON (run/lib/result), not from PERFORMANCE lines.
    run/bench/step_summary.py reads the step benchmarks' own PERFORMANCE lines (cuda_step,
    step_torch.py), not minipt's."""
    offenders = []
    for top, dirs, files in os.walk(os.path.join(mr.REPO_ROOT, "run")):
        rel = os.path.relpath(top, mr.REPO_ROOT)
        if rel.endswith("results"):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(top, name)
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if re.search(r"(grep|sed|awk|startswith|re\.\w+)\b.*PERFORMANCE", line):
                    offenders.append("%s:%d: %s" % (os.path.relpath(path, mr.REPO_ROOT), n, line))
    assert not offenders, "\n".join(offenders)
