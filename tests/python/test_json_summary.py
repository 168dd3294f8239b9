"""The JSON summary NAME.json of `minipt run` and `minipt simulate` (src/app/results.hpp): valid UTF-8
whatever bytes the run's name holds (invalid ones become U+FFFD), and a "provenance"
object (src/trace/provenance.hpp); simulate follows run.json as run does.

Needs MINIPT_BIN=/path/to/minipt; MINIPT_MPIEXEC overrides the launcher (default mpirun).
"""

import json
import subprocess

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=2"]
REPLACEMENT = "\ufffd"


def test_invalid_utf8_run_name_is_replaced(tmp_path):
    out = tmp_path / "bad.h5"
    args = ["run", "--config", mr.DEMO_CONFIG] + SHORT + ["--out", str(out), "--quiet"]
    # argv is bytes: the name holds a lone continuation byte, 0xFF and a truncated sequence.
    name = b"name-\x80-\xff-\xc3"
    cmd = mr.command_line(args, ranks=2) + [b"--set", b"run.name=" + name]
    proc = subprocess.run(cmd, capture_output=True, timeout=mr.DEFAULT_TIMEOUT_S, env=mr.mpi_env())
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(
        errors="replace")

    raw = (tmp_path / "bad.json").read_bytes()
    raw.decode("utf-8")  # strict: raises on any invalid byte
    assert b"\xff" not in raw and b"\x80" not in raw
    summary = json.loads(raw)
    assert summary["name"] == "name-%s-%s-%s" % (REPLACEMENT, REPLACEMENT, REPLACEMENT)
    assert REPLACEMENT in summary["config_toml"]
    assert summary["h5"] == str(out)

    prov = summary["provenance"]
    assert isinstance(prov, dict)
    assert prov["minipt_version"] == summary["minipt_version"]
    version = mr.run_minipt(["--version"], check=True).stdout
    assert prov["minipt_version"] in version
    assert prov["git_revision"] == summary["git_revision"]
    # One revision everywhere: --version names the one the files record.
    assert "(" + prov["git_revision"] + ")" in version, (version, prov["git_revision"])
    assert prov["world_size"] == 2
    assert len(prov["hosts"]) == 2 and len(prov["devices"]) == 2
    assert isinstance(prov["mpi_library"], str) and prov["mpi_library"]
    assert prov["created_utc"].endswith("Z")
    assert prov["command_line"][1:] == [*args, "--set", "run.name=" + summary["name"]]


def test_summary_numbers_are_json_numbers(tmp_path):
    """Every figure of "summary" is a number (or null, never a bare nan Python would read)."""
    out = tmp_path / "ok.h5"
    mr.run_minipt(["run", "--config", mr.DEMO_CONFIG] + SHORT + ["--out", str(out), "--quiet"],
                  ranks=1, check=True)
    text = (tmp_path / "ok.json").read_text(encoding="utf-8")

    def reject(constant):
        raise AssertionError("non-JSON constant %s in the summary" % constant)

    summary = json.loads(text, parse_constant=reject)["summary"]
    for key in ("tokens_per_s", "tokens_per_s_per_rank", "step_ms", "utilization", "idle_fraction",
                "mfu", "steps_measured", "tokens", "peak_memory_bytes"):
        assert summary[key] is None or isinstance(summary[key], (int, float)), key
    assert len(summary["utilization_per_rank"]) == 1
    assert len(summary["step_seconds"]) == 2


def test_simulate_follows_run_json(tmp_path):
    sim = ["simulate", "--config", mr.DEMO_CONFIG, "--ranks", "2"] + SHORT
    mr.run_minipt(sim + ["--out", str(tmp_path / "a.h5"), "--set", "run.json=false", "--quiet"],
                  check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]
    # FILE.json a directory: one error naming run.json, exit 2, nothing written.
    (tmp_path / "b.json").mkdir()
    proc = mr.run_minipt(sim + ["--out", str(tmp_path / "b.h5"), "--quiet"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "run.json" in proc.stderr and "is a directory" in proc.stderr, proc.stderr
    assert not (tmp_path / "b.h5").exists()
    # FILE.json one of the inputs: refused before anything is written.
    cfg = tmp_path / "c.json"
    cfg.write_text("[run]\nsteps = 2\n")
    proc = mr.run_minipt(sim + ["--config", str(cfg)] +
                         ["--out", str(tmp_path / "c.h5"), "--quiet"])
    assert proc.returncode == 2 and "run.json" in proc.stderr, proc.stdout + proc.stderr
    assert not (tmp_path / "c.h5").exists()
