"""Faults during a run (issue 12): a job that is signalled (Slurm's scancel, Ctrl-C) or
has a hung rank ends promptly, non-zero, with a message naming the rank and the cause,
and leaves neither a temp file nor a final output file behind.

Each run is a 2-rank emulated job made slow on purpose (compute.peak_tflops = 0.01: a
step takes about half a second, 50 steps far longer than any test waits), so the fault
always lands while steps are running.
"""
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

SLOW_RUN = ["run", "--config", os.path.join(mr.INPUTS, "models", "tiny.toml"),
            "--set", "run.steps=50", "--set", "run.warmup_steps=1",
            "--set", "compute.peak_tflops=0.01", "--set", "workload.minibatch_size=8",
            "--set", "workload.mean=256", "--set", "workload.max=1024"]

# A step line of rank 0 (printed without --quiet once a step has finished).
STEP_LINE = "step "


class Job:
    """A minipt job under the launcher, in its own session (so signalling its process
    group reaches the launcher only, as scancel's signal to the job step does)."""

    def __init__(self, out_dir, extra=()):
        self.out = str(out_dir / "run.h5")
        cmd = mr.command_line(SLOW_RUN + list(extra) + ["--out", self.out], ranks=2)
        # Open MPI's default pause (1 s) between the SIGCONT, SIGTERM and SIGKILL its
        # launcher sends the ranks when the job is killed: with none (what mpi_env sets
        # for the error tests) the SIGKILL can beat the ranks' SIGTERM handlers.
        env = mr.mpi_env({"OMPI_MCA_odls_base_sigkill_timeout": "1"})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        self.lines = queue.Queue()
        self.stdout, self.stderr = [], []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True)),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False))]
        for t in self._readers:
            t.daemon = True
            t.start()

    def _read(self, stream, into, announce):
        for line in stream:
            into.append(line)
            if announce:
                self.lines.put(line)

    def wait_for_step(self, timeout=60):
        """Blocks until rank 0 printed its first step line (the run is in its steps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=0.5).startswith(STEP_LINE):
                    return
            except queue.Empty:
                pass
            if self.proc.poll() is not None:
                break
        self.kill()
        pytest.fail("no step started within %d s\n%s" % (timeout, self.text()))

    def rank_pids(self):
        """The launcher's child processes (the minipt ranks)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            # Fields after the parenthesised command: state, ppid, ...
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == self.proc.pid:
                pids.append(int(entry))
        return sorted(pids)

    def finish(self, timeout):
        """(return code, seconds it took) once the job has ended; fails after `timeout`."""
        start = time.monotonic()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("job still running %d s after the fault\n%s" % (timeout, self.text()))
        for t in self._readers:
            t.join(timeout=10)
        return rc, time.monotonic() - start

    def kill(self):
        for pid in self.rank_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def text(self):
        return "--- stdout\n%s\n--- stderr\n%s" % ("".join(self.stdout), "".join(self.stderr))


def alive(pids, grace):
    """The processes of `pids` still running (not gone, not zombies) after up to `grace` s."""
    deadline = time.monotonic() + grace
    while True:
        running = []
        for pid in pids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2:].split()[0] != "Z":
                running.append(pid)
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.1)


def leftovers(directory):
    """Temp files (.NAME.XXXXXXXX.tmp) and final outputs left in `directory`."""
    return sorted(n for n in os.listdir(directory)
                  if n.endswith(".tmp") or n.endswith(".h5") or n.endswith(".json"))


def test_sigterm_to_launcher_stops_every_rank(tmp_path):
    """scancel / kill of the job: the launcher passes SIGTERM on to every rank."""
    job = Job(tmp_path)
    job.wait_for_step()
    ranks = job.rank_pids()
    assert len(ranks) == 2, ranks
    os.killpg(job.proc.pid, signal.SIGTERM)
    rc, took = job.finish(timeout=15)
    assert rc != 0, job.text()
    assert took < 15
    stderr = "".join(job.stderr)
    for r in (0, 1):
        assert "minipt: rank %d: stopped by SIGTERM (signal 15)" % r in stderr, job.text()
    assert "Segmentation" not in stderr and "core dumped" not in stderr, job.text()
    assert leftovers(tmp_path) == [], job.text()
    assert "PERFORMANCE" not in "".join(job.stdout)
    assert not alive(ranks, grace=5), "ranks outlived the launcher: %s" % alive(ranks, 0)


def test_sigint_to_one_rank_ends_the_job(tmp_path):
    """Ctrl-C reaching one rank: it exits with the signal's status and the launcher takes
    the other rank down."""
    job = Job(tmp_path)
    job.wait_for_step()
    ranks = job.rank_pids()
    assert len(ranks) == 2, ranks
    os.kill(ranks[1], signal.SIGINT)
    rc, took = job.finish(timeout=15)
    assert rc != 0, job.text()
    stderr = "".join(job.stderr)
    assert "minipt: rank 1: stopped by SIGINT (signal 2)" in stderr, job.text()
    assert leftovers(tmp_path) == [], job.text()


def test_timeout_takes_down_a_job_with_a_stopped_rank(tmp_path):
    """run.timeout_s: rank 1 is stopped (SIGSTOP) mid-run, so rank 0 waits for it in a
    collective forever; rank 0's watchdog aborts the whole job after 3 s."""
    job = Job(tmp_path, ["--set", "run.timeout_s=3"])
    start = time.monotonic()
    job.wait_for_step()
    ranks = job.rank_pids()
    assert len(ranks) == 2, ranks
    os.kill(ranks[1], signal.SIGSTOP)
    try:
        rc, _ = job.finish(timeout=20)
    finally:
        for pid in ranks:  # a rank left stopped would outlive the test
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert rc != 0, job.text()
    assert time.monotonic() - start < 25
    stderr = "".join(job.stderr)
    assert "minipt: rank 0: error: run.timeout_s = 3 exceeded (step " in stderr, job.text()
    assert leftovers(tmp_path) == [], job.text()


def test_timeout_not_reached_leaves_the_run_alone(tmp_path):
    out = tmp_path / "ok.h5"
    proc = mr.run_minipt(["run", "--config", os.path.join(mr.INPUTS, "models", "tiny.toml"),
                          "--set", "run.steps=2", "--set", "run.timeout_s=120",
                          "--set", "workload.minibatch_size=4", "--set", "workload.mean=64",
                          "--set", "workload.max=128", "--out", str(out), "--quiet"],
                         ranks=2, check=True)
    assert "PERFORMANCE" in proc.stdout
    assert "run.timeout_s" not in proc.stderr
    assert out.exists()


def mpmd(parts, tmp_path):
    """One job whose ranks run different command lines (Open MPI's `a : b` form)."""
    cmd = mr.mpiexec()
    for i, args in enumerate(parts):
        cmd += (["-n", "1", "--oversubscribe", mr.minipt_bin()] + args +
                ["--out", str(tmp_path / "run.h5")] + ([":"] if i + 1 < len(parts) else []))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=mr.mpi_env())


@pytest.mark.parametrize("second,must", [
    (["--set", "run.steps=4"],
     ["rank 1: its command line differs from rank 0's", "'--set run.steps=4'"]),
    (["--set", "workload.seed_unused=1"], ["rank 1", "'--set workload.seed_unused=1'"]),
], ids=["different-config", "bad-key-on-one-rank"])
def test_ranks_that_disagree_on_their_input_fail_fast(tmp_path, second, must):
    """Every rank runs on the files rank 0 reads (tests/python/test_input_broadcast.py), so
    a rank given other --config, --set or --out (an MPMD job) would run on input its
    command line does not say: exit 2, a message naming the rank and the argument, no
    output."""
    first = ["run", "--config", mr.DEMO_CONFIG, "--set", "run.steps=3"]
    start = time.monotonic()
    p = mpmd([first, first + second], tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert time.monotonic() - start < 30
    for m in must:
        assert m in p.stderr, (m, p.stderr)
    assert not (tmp_path / "run.h5").exists()
