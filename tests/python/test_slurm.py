"""run/slurm/minipt.sbatch on a real Slurm (issue 16): a one-node cluster started for this
module from Debian's slurm-wlm and munge, then three kinds of job.

The fixture writes slurm.conf into a temp dir (no cgroups: proctrack/linuxproc,
task/none; SlurmUser=root; one node, minipt0, declared with 4 CPUs whatever the machine
has, SlurmdParameters=config_overrides), starts munged on its own socket with a fresh key
(AuthType=auth/munge, so the real authentication path is used), slurmctld and slurmd in
the foreground (-D) on two free ports, waits until `sinfo` shows the node idle, and in
teardown stops the three daemons by their process ids (SIGTERM, then SIGKILL).

* a good job: COMPLETED, both PERFORMANCE lines and VERIFICATION PASSED twice in the job
  log, minipt-JOBID-{fsdp,odc}.{h5,json,log} in OUTDIR, the timelines readable and
  agreeing with the PERFORMANCE lines; the job log in the submit directory (sbatch's
  default --output);
* a job with a bad key, with and without the plan step first: FAILED with exit code 2,
  minipt's message in the job log (stderr is kept), no .h5;
* a cancelled job (scancel while the fsdp run is stepping): CANCELLED, no .h5 and no
  temp file, no process of the job left.

Skips (saying why) when not root, or without slurmctld, slurmd, sbatch, munged, or
Slurm's PMIx plugin (the script starts the ranks with `srun --mpi=pmix`). About 40 s
on 2 cores (30-40 s measured); every wait has a timeout.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import minipt_runner as mr

h5py = pytest.importorskip("h5py")

SBATCH_SCRIPT = os.path.join(mr.REPO_ROOT, "run", "slurm", "minipt.sbatch")
NODE = "minipt0"
# A CPU-only node with 4 tasks of one core (run/slurm/README.md).
SHAPE = ["--gpus-per-node=0", "--ntasks-per-node=4", "--cpus-per-task=1"]
SMALL = "model.layers=2 run.steps=2 workload.minibatch_size=4"
KILL_WAIT_S = 5  # slurm.conf KillWait: SIGTERM to SIGKILL
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "BOOT_FAIL", "DEADLINE", "PREEMPTED"}

SLURM_CONF = """\
ClusterName=minipttest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait={kill_wait}
MailProg=/bin/true
NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def slurm_skip_reason():
    if mr.skip_reason() is not None:
        return mr.skip_reason()
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root (SlurmUser=root); not root here"
    missing = [t for t in ("slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo",
                           "srun", "munged") if shutil.which(t) is None]
    if missing:
        return ("Slurm is not installed (no %s; run/deps.sh installs Debian's slurm-wlm and "
                "munge as root)" % ", ".join(missing))
    return None


pytestmark = pytest.mark.skipif(slurm_skip_reason() is not None, reason=str(slurm_skip_reason()))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop(proc):
    """SIGTERM to the daemon's pid, SIGKILL if it is still there 10 s later."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Cluster:
    def __init__(self, directory):
        self.dir = directory
        self.env = mr.mpi_env({"SLURM_CONF": str(directory / "slurm.conf")})
        for name in list(self.env):  # an outer allocation must not leak into ours
            if name.startswith(("SLURM_", "SBATCH_", "SRUN_")) and name != "SLURM_CONF":
                del self.env[name]
        self.daemons = []
        self.jobs = []

    def tool(self, *args, timeout=30, check=True, cwd=None):
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check, cwd=cwd)

    def start(self, name, args):
        log = open(self.dir / (name + ".stdout"), "w")
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.daemons.append((name, proc))
        return proc

    def logs(self):
        text = []
        for name in ("munged.stdout", "slurmctld.stdout", "slurmd.stdout"):
            path = self.dir / name
            if path.exists():
                text.append("--- %s (tail)\n%s" % (name, path.read_text()[-2000:]))
        return "\n".join(text)

    def submit(self, args, cwd):
        out = self.tool("sbatch", "--parsable", *args, SBATCH_SCRIPT, timeout=30, cwd=cwd)
        job = out.stdout.strip().split(";")[0]
        assert job.isdigit(), out.stdout + out.stderr
        self.jobs.append(job)
        return job

    def job(self, job):
        """{field: value} of `scontrol show job -o JOB`."""
        out = self.tool("scontrol", "show", "job", "-o", job).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, job, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job)
            if info.get("JobState") in FINAL_STATES:
                return info
            time.sleep(0.5)
        pytest.fail("job %s not finished after %d s: %s\n%s" % (job, timeout, self.job(job),
                                                                 self.logs()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = tmp_path_factory.mktemp("slurm")
    # munged wants every directory above its socket searchable by all, which pytest's
    # /tmp/pytest-of-USER (0700) is not: the socket gets a directory of its own.
    munge_dir = tempfile.mkdtemp(prefix="minipt-munge-")
    os.chmod(munge_dir, 0o755)
    munge_socket = os.path.join(munge_dir, "munge.sock")
    (d / "state").mkdir()
    (d / "spool").mkdir()
    ctld_port, slurmd_port = free_ports(2)
    (d / "slurm.conf").write_text(SLURM_CONF.format(dir=d, ctld_port=ctld_port,
                                                    slurmd_port=slurmd_port, node=NODE,
                                                    munge_socket=munge_socket,
                                                    kill_wait=KILL_WAIT_S))
    (d / "munge.key").write_bytes(os.urandom(1024))
    (d / "munge.key").chmod(0o600)
    c = Cluster(d)
    try:
        munged = c.start("munged", ["munged", "--foreground", "--socket=%s" % munge_socket,
                           "--key-file=%s/munge.key" % d, "--pid-file=%s/munged.pid" % d,
                           "--log-file=%s/munged.log" % d, "--seed-file=%s/munge.seed" % d])
        deadline = time.monotonic() + 15
        while (not os.path.exists(munge_socket) and munged.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.1)
        assert os.path.exists(munge_socket), "munged did not start\n" + c.logs()
        c.start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(d / "slurm.conf")])
        c.start("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(d / "slurm.conf")])
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            for name, proc in c.daemons:
                assert proc.poll() is None, "%s exited %s\n%s" % (name, proc.returncode, c.logs())
            r = c.tool("sinfo", "-h", "-n", NODE, "-o", "%t", check=False, timeout=15)
            state = r.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        assert state == "idle", "node %s is %r, not idle\n%s" % (NODE, state, c.logs())
        r = c.tool("srun", "--mpi=list", check=False)
        mpi = r.stdout + r.stderr
        if "pmix" not in mpi:
            pytest.skip("this Slurm has no PMIx plugin (srun --mpi=list: %s); "
                        "minipt.sbatch launches with srun --mpi=pmix" % " ".join(mpi.split()))
        yield c
    finally:
        for job in c.jobs:
            c.tool("scancel", job, check=False)
        for name, proc in reversed(c.daemons):
            stop(proc)
        shutil.rmtree(munge_dir, ignore_errors=True)


def sbatch_env(outdir, sets, **extra):
    words = ["ALL", "MINIPT=%s" % mr.minipt_bin(), "CONFIG=%s" % mr.DEMO_CONFIG,
             "OUTDIR=%s" % outdir, "SETS=%s" % sets]
    words += ["%s=%s" % kv for kv in extra.items()]
    return "--export=" + ",".join(words)


def job_processes(cluster, job):
    """Pids of processes started for JOB by this cluster (their environment says so)."""
    marks = [b"SLURM_JOB_ID=%s\0" % job.encode(), b"SLURM_CONF=%s\0" % cluster.env["SLURM_CONF"].encode()]
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                environ = f.read() + b"\0"
        except OSError:
            continue
        if all(m in environ for m in marks):
            pids.append(int(pid))
    return pids


def test_job_completes_with_both_runs(cluster, tmp_path):
    submit, outdir = tmp_path / "submit", tmp_path / "out"
    submit.mkdir()
    # No --output: the job log goes to sbatch's default, the submit directory.
    job = cluster.submit([*SHAPE, sbatch_env(outdir, SMALL)], cwd=submit)
    info = cluster.wait(job, timeout=120)
    log = submit / ("minipt-%s.out" % job)
    text = log.read_text() if log.exists() else "(no job log %s)" % log
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", "%s\n%s" % (info, text)
    assert "job %s: 4 tasks on 1 node(s) (%s)" % (job, NODE) in text, text
    assert re.search(r"^BOUND ranks=4 ", text, re.M), text
    assert text.count("VERIFICATION PASSED") == 2, text
    last = text.rstrip("\n").splitlines()[-2:]  # the script ends with both lines
    assert [l.split()[1] for l in last] == ["mode=fsdp", "mode=odc"], text
    assert sorted(os.listdir(outdir)) == sorted(
        "minipt-%s-%s.%s" % (job, mode, ext) for mode in ("fsdp", "odc")
        for ext in ("h5", "json", "log")), os.listdir(outdir)
    for mode, line in zip(("fsdp", "odc"), last):
        perf = dict(kv.split("=", 1) for kv in line.split()[1:])
        assert perf["ranks"] == "4", line
        run_log = (outdir / ("minipt-%s-%s.log" % (job, mode))).read_text()
        assert line in run_log.splitlines(), run_log
        with h5py.File(outdir / ("minipt-%s-%s.h5" % (job, mode)), "r") as f:
            assert f.attrs["mode"] == mode and int(f.attrs["world_size"]) == 4
            assert f["events/t_start_ns"].shape[0] > 0
            assert float(f["summary"].attrs["tokens_per_s"]) == pytest.approx(
                float(perf["tokens_per_s"]), abs=0.06)


@pytest.mark.parametrize("run_plan", ["1", "0"])
def test_bad_key_fails_with_exit_code_2(cluster, tmp_path, run_plan):
    outdir = tmp_path / "out"
    outdir.mkdir()
    job = cluster.submit([*SHAPE, "--output=%s/minipt-%%j.out" % outdir,
                          sbatch_env(outdir, "model.layerz=2", RUN_PLAN=run_plan,
                                     SHOW_BINDING="0")], cwd=tmp_path)
    info = cluster.wait(job, timeout=60)
    text = (outdir / ("minipt-%s.out" % job)).read_text()
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0", "%s\n%s" % (info, text)
    message = "minipt: error: model.layerz: unknown key"
    assert message in text, text  # minipt's stderr is in the job log
    if run_plan == "0":  # the fsdp run failed: its .log holds stdout and stderr
        assert message in (outdir / ("minipt-%s-fsdp.log" % job)).read_text()
    names = os.listdir(outdir)
    assert not [n for n in names if n.endswith((".h5", ".tmp"))], names
    assert "minipt-%s-odc.log" % job not in names, names  # set -e: odc not attempted


def test_cancelled_job_leaves_no_half_file(cluster, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    job = cluster.submit([*SHAPE, "--output=%s/minipt-%%j.out" % outdir,
                          sbatch_env(outdir, "model.layers=2 run.steps=500 "
                                     "workload.minibatch_size=4", RUN_PLAN="0",
                                     SHOW_BINDING="0")], cwd=tmp_path)
    run_log = outdir / ("minipt-%s-fsdp.log" % job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if run_log.exists() and re.search(r"^step +1 ", run_log.read_text(), re.M):
            break
        assert cluster.job(job).get("JobState") in ("PENDING", "RUNNING"), cluster.job(job)
        time.sleep(0.3)
    else:
        pytest.fail("the fsdp run of job %s did not reach step 1 in 60 s" % job)
    cluster.tool("scancel", job)
    info = cluster.wait(job, timeout=KILL_WAIT_S + 30)
    text = (outdir / ("minipt-%s.out" % job)).read_text()
    assert info["JobState"] == "CANCELLED", "%s\n%s" % (info, text)
    assert "CANCELLED AT" in text, text
    names = os.listdir(outdir)
    assert not [n for n in names if n.endswith((".h5", ".tmp", ".json"))], names
    deadline = time.monotonic() + KILL_WAIT_S + 10
    while job_processes(cluster, job) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_processes(cluster, job) == [], "processes of job %s still running" % job
