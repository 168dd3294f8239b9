"""run/suite/run.py and run/suite/launch.py (run/mpirun): launching without help, failures
named by their run, rank and first real error line, outputs written safely, bad paths
rejected, and throughput mode (issue 30 items 1 and 6, issue 31 item 9).

Needs MINIPT_BIN; about 60 s (the throughput run: 2 copies x 10 short 4-rank runs).
"""

import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

SUITE_DIR = os.path.join(mr.REPO_ROOT, "run", "suite")
RUN_PY = os.path.join(SUITE_DIR, "run.py")
MPIRUN = os.path.join(mr.REPO_ROOT, "run", "mpirun")
SHORT = ["--set", "run.steps=2"]  # 1 warm-up + 1 measured step: the short runs of CI


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SUITE_DIR, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, SUITE_DIR)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(SUITE_DIR)
    return mod


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_")}
    env.update(extra or {})
    return env


def suite(args, timeout=300, env=None):
    return subprocess.run([sys.executable, RUN_PY] + args + ["--minipt", mr.minipt_bin()],
                          capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env())


def open_mpi():
    return load("launch").is_open_mpi("mpirun")


# --- launch.py: the rules, with a stand-in mpirun that says it is Open MPI -------------

@pytest.fixture
def fake_open_mpi(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    f = d / "mpirun"
    f.write_text("#!/bin/sh\necho 'mpirun (Open MPI) 4.1.4'\n")
    f.chmod(0o755)
    return str(f)


def test_adjust_root_and_oversubscribe(fake_open_mpi):
    launch = load("launch")
    cmd, env, notes = launch.adjust([fake_open_mpi, "-n", "4", "prog"], env={}, cores=2, uid=0)
    assert cmd == [fake_open_mpi, "--oversubscribe", "-n", "4", "prog"]
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1" and env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    assert notes == ["running as root: OMPI_ALLOW_RUN_AS_ROOT=1 and "
                     "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 set",
                     "4 ranks on 2 cores: oversubscribing (--oversubscribe)"]


def test_adjust_counts_every_context_of_an_mpmd_line(fake_open_mpi):
    launch = load("launch")
    cmd = [fake_open_mpi, "-n", "1", "a", ":", "-np", "2", "b"]
    assert launch.adjust(cmd, env={}, cores=3, uid=1000)[2] == []
    out, _, notes = launch.adjust(cmd, env={}, cores=2, uid=1000)
    assert out[1] == "--oversubscribe" and notes == [
        "3 ranks on 2 cores: oversubscribing (--oversubscribe)"]


@pytest.mark.parametrize("cmd,env,uid,cores", [
    (["-np", "4", "p"], {}, 1000, 4),                                  # enough cores, not root
    (["-n", "8", "--host", "a,b", "p"], {}, 1000, 2),                  # the user's hosts
    (["-n", "8", "p"], {"SLURM_JOBID": "7"}, 1000, 2),                # an allocation's slots
    (["-n", "8", "--oversubscribe", "p"], {}, 1000, 2),                # already said
    (["-n", "8", "p"], {"OMPI_MCA_rmaps_base_oversubscribe": "1"}, 1000, 2),
    (["-n", "1", "p"], {"OMPI_ALLOW_RUN_AS_ROOT": "1",
                        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}, 0, 2)])  # root, already set
def test_adjust_changes_nothing_that_is_not_needed(fake_open_mpi, cmd, env, uid, cores):
    launch = load("launch")
    out, out_env, notes = launch.adjust([fake_open_mpi] + cmd, env=env, cores=cores, uid=uid)
    assert out == [fake_open_mpi] + cmd and notes == [] and out_env == env


def test_adjust_leaves_other_mpis_alone(tmp_path):
    other = tmp_path / "mpirun"
    other.write_text("#!/bin/sh\necho 'HYDRA build details: Version: 4.1'\n")
    other.chmod(0o755)
    launch = load("launch")
    cmd = [str(other), "-n", "8", "p"]
    assert launch.adjust(cmd, env={}, cores=2, uid=0) == (cmd, {}, [])
    assert launch.adjust(["srun", "-n", "8", "p"], env={}, cores=2, uid=0)[2] == []


@pytest.mark.skipif(not open_mpi(), reason="mpirun is not Open MPI's")
def test_readme_mpirun_command_works_without_ompi_variables(tmp_path):
    # run/mpirun -n 4 ...: the README's direct run, in a new user's environment.
    proc = subprocess.run([MPIRUN, "-n", "4", mr.minipt_bin(), "run", "--config",
                           os.path.join(mr.INPUTS, "suite", "small.toml")] + SHORT +
                          ["--out", str(tmp_path / "r.h5")], capture_output=True, text=True,
                          timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VERIFICATION PASSED" in proc.stdout
    if os.geteuid() == 0:
        assert "launch: running as root" in proc.stderr
    if load("launch").local_cores() < 4:
        assert "launch: 4 ranks on %d core" % load("launch").local_cores() in proc.stderr


# --- failures: named by run, rank and the first real error line -----------------------

def test_launch_failure_is_not_a_verification_failure(tmp_path):
    # A launcher that refuses as Open MPI refuses root: its banner, its message, exit 1.
    fake = tmp_path / "refusing-launcher"
    fake.write_text("#!/bin/sh\necho '-----------------------------' >&2\n"
                    "echo 'mpirun has detected an attempt to run as root.' >&2\n"
                    "echo '-----------------------------' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "o"
    proc = suite(["small", "--out", str(out), "--launcher", str(fake) + " -n {ranks}"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = [l for l in proc.stdout.splitlines() if l.startswith("SUITE ")][-1]
    assert line.startswith("SUITE small LAUNCH FAILED: fsdp-1: launch failure")
    assert "VERIFICATION" not in line and "-----" not in line
    assert "mpirun has detected an attempt to run as root." in line
    assert str(out / "runs" / "fsdp-1.log") in line
    doc = json.loads((out / "suite.json").read_text())
    assert doc["verification"] == "NOT RUN" and doc["figure_of_merit"] is None
    assert doc["runs"][0]["launch_failure"] is True
    report = (out / "report.md").read_text()
    assert "LAUNCH FAILED" in report and "VERIFICATION FAILED" not in report
    # minipt-analyze's page of the directory says the same.
    page = tmp_path / "page.html"
    analyze = subprocess.run([sys.executable, "-m", "minipt_analysis", "report", str(out), "-o",
                              str(page)], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=os.path.join(mr.REPO_ROOT, "analysis")))
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr
    html = page.read_text()
    assert "LAUNCH FAILED" in html and "VERIFICATION FAILED" not in html


def test_failed_run_names_key_rank_and_first_error_line(tmp_path):
    out = tmp_path / "o"
    proc = suite(["small", "--out", str(out), "--set", "run.warmup_steps=9"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((out / "suite.json").read_text())
    failure = doc["failure"]
    assert failure.startswith("fsdp-1: rank ") and " exited 2 " in failure, failure
    assert "minipt: error: run.warmup_steps" in failure and "-----" not in failure
    assert "Primary job" not in failure and "Traceback" not in proc.stderr


# --- outputs: temp beside the target, exclusive, no links followed; bad paths exit 2 -----

def test_write_atomic_does_not_follow_a_planted_temp(tmp_path, monkeypatch):
    run = load("run")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(run.secrets, "token_hex", lambda n: next(names))
    planted = tmp_path / (".suite.json.%d.aaaa.tmp" % os.getpid())
    os.symlink(victim, planted)
    (tmp_path / "suite.json").symlink_to(victim)  # and a link at the final name
    run.write_atomic(str(tmp_path / "suite.json"), "{}\n")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "suite.json").is_symlink()
    assert (tmp_path / "suite.json").read_text() == "{}\n"
    assert os.path.islink(planted)  # left alone; the write went to another fresh name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["victim", "suite.json", planted.name])


def test_symlinks_planted_in_out_do_not_redirect_the_suite(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for name in ("suite.json.tmp", "report.md.tmp", "suite.json", "report.md"):
        (out / name).symlink_to(victim)
    proc = suite(["small", "--out", str(out), "--set", "run.warmup_steps=9"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert victim.read_text() == "precious"
    for name in ("suite.json", "report.md"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert not [p for p in os.listdir(out) if p.startswith(".")]


@pytest.fixture
def tmpfs():
    """mount(fn) -> a fresh tmpfs mounted with options; skips where mount is not allowed."""
    mounted = []

    def mount(options):
        d = tempfile.mkdtemp()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(d)
            pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
        mounted.append(d)
        return d
    yield mount
    for d in mounted:
        subprocess.run(["umount", d], check=False)
        os.rmdir(d)


def test_read_only_out_exits_2_naming_it(tmpfs, tmp_path):
    if os.geteuid() == 0:
        d = tmpfs("ro,size=64k")
    else:
        d = str(tmp_path / "ro")
        os.mkdir(d)
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR)
    proc = suite(["small", "--out", os.path.join(d, "x")])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("error:") == 1 and "--out" in proc.stderr
    assert os.path.join(d, "x") in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("out", ["/proc/no/such", "FILE"])
def test_impossible_out_exits_2_naming_it(tmp_path, out):
    if out == "FILE":
        out = str(tmp_path / "file")
        open(out, "w").close()
    proc = suite(["small", "--out", out])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("error:") == 1 and "--out" in proc.stderr and out in proc.stderr
    assert "Traceback" not in proc.stderr


def test_full_disk_exits_2_naming_the_file(tmpfs):
    d = tmpfs("size=64k")
    os.makedirs(os.path.join(d, "o", "runs"))
    fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    proc = suite(["small", "--out", os.path.join(d, "o")] + SHORT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert "cannot write '%s/o/" % d in proc.stderr and "No space left" in proc.stderr
    assert not [p for p in os.listdir(os.path.join(d, "o")) if p.endswith(".tmp")]


def test_minipt_that_is_a_directory_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, RUN_PY, "small", "--out", str(tmp_path / "o"),
                           "--minipt", "/tmp"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--minipt" in proc.stderr and "'/tmp'" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("copies", ["0", "-1"])
def test_copies_below_one_exits_2(tmp_path, copies):
    proc = suite(["small", "--out", str(tmp_path / "o"), "--copies", copies])
    assert proc.returncode == 2 and "--copies" in proc.stderr


# --- throughput mode ---------------------------------------------------------------------

def test_throughput_two_copies(tmp_path):
    out = tmp_path / "o"
    proc = suite(["small", "--out", str(out), "--copies", "2"] + SHORT, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "throughput mode: 2 copies of 4 ranks at once (8 ranks" in proc.stdout
    doc = json.loads((out / "suite.json").read_text())
    assert doc["copies"] == 2 and doc["verification"] == "PASSED"
    per_copy = []
    for c in (1, 2):
        cdoc = json.loads((out / ("copy-%d" % c) / "suite.json").read_text())
        assert cdoc["verification"] == "PASSED"  # each copy verified by itself
        # Each copy ran its own jobs into its own directory, at the same time as the other.
        for m in ("fsdp", "odc"):
            for r in range(1, 6):
                j = json.loads((out / ("copy-%d" % c) / "runs" / ("%s-%d.json" % (m, r)))
                               .read_text())
                assert j["name"] == "suite-small-%s-%d-copy%d" % (m, r, c)
                assert j["mode"] == m and j["world_size"] == 4
        value = cdoc["figure_of_merit"]["value"]
        assert doc["copy"][c - 1]["figure_of_merit"] == value
        assert "SUITE small copy=%d figure_of_merit=%.1f" % (c, value) in proc.stdout
        per_copy.append(value)
    fom = doc["figure_of_merit"]
    assert fom["value"] == min(per_copy) and fom["copy"] == 1 + per_copy.index(min(per_copy))
    assert "SUITE small figure_of_merit=%.1f" % min(per_copy) in proc.stdout
    assert "copies=2 slowest_copy=%d" % fom["copy"] in proc.stdout
    assert "slowest copy" in (out / "report.md").read_text()
    # minipt-analyze report reads the throughput directory: the job's (slowest) figure.
    env = dict(os.environ, PYTHONPATH=os.path.join(mr.REPO_ROOT, "analysis"))
    rep = subprocess.run([sys.executable, "-m", "minipt_analysis", "report", str(out), "-o",
                          str(tmp_path / "a.md")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "Figure of merit: %.1f" % fom["value"] in (tmp_path / "a.md").read_text()


# --- the Slurm README's "without a cluster" recipe, as written, without OMPI_* ---------

def test_slurm_readme_local_recipe_runs_as_written(tmp_path):
    text = open(os.path.join(mr.REPO_ROOT, "run", "slurm", "README.md")).read()
    section = text.split("## Checking the script without a cluster", 1)[1]
    recipe = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "/tmp/fakebin" in recipe and "/tmp/minipt-slurm" in recipe
    # Only the scratch paths move into this test's directory, and the executable to test.
    recipe = recipe.replace("/tmp/fakebin", str(tmp_path / "fakebin")).replace(
        "/tmp/minipt-slurm", str(tmp_path / "out")).replace(
        "MINIPT=$PWD/build/cpu/src/minipt", "MINIPT=" + mr.minipt_bin())
    proc = subprocess.run(["bash", "-c", "set -e\n" + recipe], capture_output=True, text=True,
                          timeout=300, cwd=mr.REPO_ROOT, env=clean_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("PERFORMANCE ") >= 2, proc.stdout[-3000:]
    for mode in ("fsdp", "odc"):
        assert (tmp_path / "out" / ("minipt-local-%s.h5" % mode)).is_file()
