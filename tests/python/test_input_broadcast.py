"""One reading of the inputs (issue 12): under mpirun, `minipt run` reads the configuration
files, their `base` includes, the histogram file and the cost file on rank 0 only and
broadcasts their bytes; every rank loads the configuration from those bytes. So the other ranks never open
an input file, an input error is printed once (by rank 0) while every rank exits 2, and
ranks given other --config, --set or --out (an MPMD job) are an error naming the rank.
"""
import os
import shutil
import stat
import subprocess

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=4",
         "--quiet"]


def write_inputs(directory):
    """A configuration with a base include and a histogram file, named relative to it."""
    directory.mkdir()
    (directory / "base.toml").write_text('base = ["' + mr.DEMO_CONFIG + '"]\n')
    (directory / "run.toml").write_text(
        'base = ["base.toml"]\n[workload]\ndistribution = "histogram"\n'
        'histogram_file = "lengths.csv"\nmin = 64\nmax = 4096\n')
    (directory / "lengths.csv").write_text("length,count\n256,3\n1024,2\n4096,1\n")


def mpmd(contexts, timeout=60, env=None):
    """One Open MPI job of several application contexts: (ranks, working dir, args)."""
    cmd = mr.mpiexec()
    for i, (ranks, wdir, args) in enumerate(contexts):
        cmd += ["-n", str(ranks), "--oversubscribe", "--wdir", str(wdir), mr.minipt_bin()] + args
        if i + 1 < len(contexts):
            cmd.append(":")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env or mr.mpi_env())


def test_inputs_that_only_rank_0_can_see_are_enough(tmp_path):
    """Rank 0 runs where the configuration, its include and its histogram file are; the
    other ranks run in an empty directory, where the same relative names name nothing:
    the run works, so they never opened a file."""
    inputs, elsewhere = tmp_path / "inputs", tmp_path / "elsewhere"
    write_inputs(inputs)
    elsewhere.mkdir()
    out = tmp_path / "run.h5"
    args = ["run", "--config", "run.toml", "--out", str(out)] + SHORT
    p = mpmd([(1, inputs, args), (2, elsewhere, args)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert mr.parse_performance(p.stdout)["ranks"] == 3
    assert out.exists()
    assert os.listdir(elsewhere) == []


def test_a_cost_file_only_rank_0_can_see_is_enough(tmp_path):
    """The same for compute.cost_model (a calibrated cost file of demo.toml's model)."""
    inputs, elsewhere = tmp_path / "inputs", tmp_path / "elsewhere"
    write_inputs(inputs)
    elsewhere.mkdir()
    shutil.copy(os.path.join(mr.REPO_ROOT, "analysis", "examples", "gpu-1xh200", "cost.toml"),
                inputs / "cost.toml")
    out = tmp_path / "run.h5"
    args = ["run", "--config", "run.toml", "--set", "compute.cost_model=cost.toml",
            "--set", "run.steps=2", "--set", "workload.minibatch_size=3", "--out", str(out),
            "--quiet"]
    p = mpmd([(1, inputs, args), (2, elsewhere, args)], timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "VERIFICATION PASSED" in p.stdout
    assert os.listdir(elsewhere) == []


def test_one_rank_alone_reads_its_inputs_from_the_disk(tmp_path):
    """Without the launcher nothing changes: the same files, read by the one rank."""
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    p = mr.run_minipt(["run", "--config", "run.toml", "--out", str(tmp_path / "one.h5")] + SHORT,
                      cwd=str(inputs))
    assert p.returncode == 0, p.stdout + p.stderr


def rank_exit_codes(tmp_path, args, ranks=4):
    """Runs `args` on `ranks` ranks, each under a shell that records its own exit code, with
    Open MPI told not to kill the job when one rank exits non-zero: every rank must end by
    itself. Returns (the job, {rank: exit code})."""
    codes = tmp_path / "codes"
    codes.mkdir()
    wrapper = tmp_path / "rank.sh"
    wrapper.write_text('#!/bin/sh\n"$@"\nrc=$?\necho $rc > "%s/$OMPI_COMM_WORLD_RANK"\nexit $rc\n'
                       % codes)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    cmd = mr.mpiexec() + ["-n", str(ranks), "--oversubscribe", str(wrapper), mr.minipt_bin()]
    env = mr.mpi_env({"OMPI_MCA_orte_abort_on_non_zero_status": "0"})
    p = subprocess.run(cmd + args, capture_output=True, text=True, timeout=60, env=env)
    return p, {int(f): int((codes / f).read_text()) for f in os.listdir(codes)}


@pytest.mark.parametrize("case", ["missing_histogram", "missing_base", "bad_value_in_file",
                                  "missing_cost_file"])
def test_an_input_error_prints_once_and_every_rank_exits_2(tmp_path, case):
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    must = {"missing_histogram": ["workload.histogram_file", "gone.csv", "cannot read"],
            "missing_base": ["gone.toml", "cannot read"],
            "bad_value_in_file": ["model.layers", "-3"],
            "missing_cost_file": ["compute.cost_model", "gone-cost.toml", "cannot read"]}[case]
    extra = []
    if case == "missing_histogram":
        (inputs / "lengths.csv").rename(inputs / "gone.csv.old")
        text = (inputs / "run.toml").read_text().replace("lengths.csv", "gone.csv")
        (inputs / "run.toml").write_text(text)
    elif case == "missing_base":
        (inputs / "run.toml").write_text('base = ["gone.toml"]\n')
    elif case == "bad_value_in_file":
        (inputs / "run.toml").write_text('base = ["base.toml"]\n[model]\nlayers = -3\n')
    else:
        extra = ["--set", "compute.cost_model=" + str(inputs / "gone-cost.toml")]
    out = tmp_path / "run.h5"
    p, codes = rank_exit_codes(tmp_path, ["run", "--config", str(inputs / "run.toml"),
                                          "--out", str(out)] + extra)
    # (The launcher's own status is 0 when told not to abort: the ranks' codes are the test.)
    assert codes == {0: 2, 1: 2, 2: 2, 3: 2}, p.stdout + p.stderr
    stderr = mr.launcher_free_stderr(p.stderr)
    messages = [l for l in stderr.splitlines() if l.startswith("minipt")]
    assert len(messages) == 1, p.stderr
    assert messages[0].startswith("minipt: error: "), p.stderr
    for m in must:
        assert m in messages[0], (m, p.stderr)
    assert "rank " not in messages[0], p.stderr  # rank 0's error is not labelled
    assert not out.exists()


def test_ranks_given_another_config_are_named(tmp_path):
    """An MPMD job whose rank 2 names another file (one that rank 0 does not read): exit 2,
    once, naming rank 2 and the argument."""
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    out = ["--out", str(tmp_path / "run.h5")]
    first = ["run", "--config", "run.toml"] + out + SHORT
    other = ["run", "--config", "base.toml"] + out + SHORT
    p = mpmd([(2, inputs, first), (2, inputs, other)])
    assert p.returncode == 2, p.stdout + p.stderr
    messages = [l for l in mr.launcher_free_stderr(p.stderr).splitlines()
                if l.startswith("minipt")]
    assert len(messages) == 1, p.stderr
    for m in ["rank 2:", "command line differs from rank 0's", "'--config base.toml'",
              "'--config run.toml'"]:
        assert m in messages[0], (m, p.stderr)
    assert not (tmp_path / "run.h5").exists()


def test_a_command_line_that_fails_on_some_ranks_ends_every_rank(tmp_path):
    """Ranks 2 and 3 are given an option minipt does not know, ranks 0 and 1 a good run:
    the job does not wait for ranks that never reach the broadcast; it exits 2 at once,
    printing rank 2's error once."""
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    good = ["run", "--config", "run.toml", "--out", str(tmp_path / "run.h5")] + SHORT
    bad = ["run", "--config", "run.toml", "--stepz", "3"]
    p = mpmd([(2, inputs, good), (2, inputs, bad)], timeout=30)
    assert p.returncode == 2, p.stdout + p.stderr
    messages = [l for l in mr.launcher_free_stderr(p.stderr).splitlines()
                if l.startswith("minipt")]
    assert len(messages) == 1, p.stderr
    assert messages[0].startswith("minipt: error: rank 2: "), p.stderr
    assert "--stepz" in messages[0], p.stderr
    assert not (tmp_path / "run.h5").exists()


def test_rank_0_alone_failing_to_parse_is_its_plain_error(tmp_path):
    """Only rank 0's command line is bad: its message, not labelled with a rank."""
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    good = ["run", "--config", "run.toml", "--out", str(tmp_path / "run.h5")] + SHORT
    p = mpmd([(1, inputs, ["run", "--config"]), (2, inputs, good)], timeout=30)
    assert p.returncode == 2, p.stdout + p.stderr
    messages = [l for l in mr.launcher_free_stderr(p.stderr).splitlines()
                if l.startswith("minipt")]
    assert len(messages) == 1, p.stderr
    assert messages[0].startswith("minipt: error: ") and "rank " not in messages[0], p.stderr
    assert "--config" in messages[0], p.stderr


@pytest.mark.parametrize("other", ["plan", "simulate", "version", "help"])
def test_ranks_given_another_command_are_named(tmp_path, other):
    """Rank 0 runs, ranks 1 and 2 were given another command (one that works on rank 0
    alone, or none): exit 2, once, naming rank 1 and both commands, no file."""
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    out = ["--out", str(tmp_path / "run.h5")]
    first = ["run", "--config", "run.toml"] + out + SHORT
    second = {"plan": ["plan", "--config", "run.toml"],
              "simulate": ["simulate", "--config", "run.toml", "--ranks", "2"],
              "version": ["--version"], "help": ["--help"]}[other]
    p = mpmd([(1, inputs, first), (2, inputs, second)], timeout=30)
    assert p.returncode == 2, p.stdout + p.stderr
    messages = [l for l in mr.launcher_free_stderr(p.stderr).splitlines()
                if l.startswith("minipt")]
    assert len(messages) == 1, p.stderr
    for m in ["rank 1:", "its command is '%s'" % other, "rank 0's is 'run'"]:
        assert m in messages[0], (m, p.stderr)
    assert not (tmp_path / "run.h5").exists()
