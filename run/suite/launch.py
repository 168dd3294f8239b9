#!/usr/bin/env python3
"""Starts an MPI job with Open MPI's mpirun so that it also works as root and with more
ranks than cores, and says what it did. Other launchers (srun, MPICH's mpiexec, ...) are
left unchanged.

    run/mpirun -n 4 build/cpu/src/minipt run --config ...     # (this file, via run/mpirun)
    python3 run/suite/launch.py -n 4 build/cpu/src/minipt run ...

Only for Open MPI's mpirun/mpiexec (found by `mpirun --version`), and only what the
user has not set already:
  * running as root: OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are
    set (Open MPI refuses root otherwise);
  * more ranks (-n/-np) than this machine's cores, no --host/--hostfile and no batch
    allocation (Slurm, PBS, LSF give mpirun their own slots): --oversubscribe is added
    (Open MPI refuses otherwise).
Each change is printed on stderr as one line, e.g.
"launch: 4 ranks on 2 cores: oversubscribing (--oversubscribe)".

The launcher is $MINIPT_MPIRUN (default mpirun). run/suite/run.py, run/demo.sh and the
scripts under run/ that call mpirun use the same rules (adjust()).
"""

import os
import shlex
import shutil
import subprocess
import sys

_OPEN_MPI_NAMES = ("mpirun", "mpiexec", "orterun", "prterun")
_HOST_OPTIONS = ("-H", "-host", "--host", "-hostfile", "--hostfile", "-machinefile",
                 "--machinefile", "-default-hostfile", "--default-hostfile", "-rf",
                 "--rankfile")
# The variables by which Open MPI's resource-manager support finds an allocation (and then
# takes its slots from it): Slurm, PBS/Torque, LSF.
_BATCH_VARIABLES = ("SLURM_JOBID", "PBS_ENVIRONMENT", "LSB_JOBID")
_version_cache = {}


def is_open_mpi(launcher):
    """True when `launcher --version` says Open MPI (cached per resolved path)."""
    path = shutil.which(launcher)
    if path is None:
        return False
    path = os.path.realpath(path)
    if path not in _version_cache:
        try:
            p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
            text = p.stdout + p.stderr
        except (OSError, subprocess.TimeoutExpired):
            text = ""
        _version_cache[path] = "Open MPI" in text or "OpenRTE" in text
    return _version_cache[path]


def local_cores():
    """Cores this process may use, counted as Open MPI counts slots: one per physical core
    (hardware threads of a core count once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
    cores = set()
    for c in cpus:
        base = "/sys/devices/system/cpu/cpu%d/topology/" % c
        try:
            with open(base + "physical_package_id") as f:
                pkg = f.read().strip()
            with open(base + "core_id") as f:
                core = f.read().strip()
            cores.add((pkg, core))
        except OSError:
            cores.add(("cpu", str(c)))
    return max(1, len(cores))


def _ranks(args):
    """The rank count of an mpirun argument list: its -n/-np/-c value, summed over the
    app contexts of an MPMD line (A : B); None when none is given."""
    total, found = 0, False
    contexts = [[]]
    for a in args:
        if a == ":":
            contexts.append([])
        else:
            contexts[-1].append(a)
    for ctx in contexts:
        for i, a in enumerate(ctx):
            value = None
            if a in ("-n", "-np", "--n", "--np", "-c") and i + 1 < len(ctx):
                value = ctx[i + 1]
            elif a.split("=")[0] in ("-n", "-np", "--n", "--np", "-c") and "=" in a:
                value = a.split("=", 1)[1]
            if value is not None and value.isdigit():
                total += int(value)
                found = True
                break
    return total if found else None


def _truthy(value):
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def adjust(cmd, env=None, cores=None, uid=None):
    """(cmd, env, notes) for a launch command list `cmd` (cmd[0] the launcher).

    Returns a copy of cmd and env changed only where Open MPI would refuse the job (see
    the module's text); `notes` lists what was changed, one sentence each.
    """
    env = dict(os.environ if env is None else env)
    cmd = list(cmd)
    notes = []
    if not cmd or os.path.basename(cmd[0]) not in _OPEN_MPI_NAMES or not is_open_mpi(cmd[0]):
        return cmd, env, notes
    uid = os.geteuid() if uid is None else uid
    if uid == 0 and not ("--allow-run-as-root" in cmd or (
            _truthy(env.get("OMPI_ALLOW_RUN_AS_ROOT")) and
            _truthy(env.get("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM")))):
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        notes.append("running as root: OMPI_ALLOW_RUN_AS_ROOT=1 and "
                     "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 set")
    ranks = _ranks(cmd[1:])
    cores = local_cores() if cores is None else cores
    already = ("--oversubscribe" in cmd or "-oversubscribe" in cmd or
               _truthy(env.get("OMPI_MCA_rmaps_base_oversubscribe")) or
               any("OVERSUBSCRIBE" in a.upper() for a in cmd[1:] if ":" in a))
    hosts = any(a in _HOST_OPTIONS or a.split("=")[0] in _HOST_OPTIONS for a in cmd[1:])
    batch = any(env.get(v) for v in _BATCH_VARIABLES)
    if ranks is not None and ranks > cores and not already and not hosts and not batch:
        cmd.insert(1, "--oversubscribe")
        notes.append("%d ranks on %d core%s: oversubscribing (--oversubscribe)" %
                     (ranks, cores, "" if cores == 1 else "s"))
    return cmd, env, notes


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    launcher = shlex.split(os.environ.get("MINIPT_MPIRUN", "mpirun"))
    if not launcher or shutil.which(launcher[0]) is None:
        print("launch: error: MINIPT_MPIRUN: launcher '%s' not found (install Open MPI, or "
              "set MINIPT_MPIRUN)" % (launcher[0] if launcher else ""), file=sys.stderr)
        return 2
    cmd, env, notes = adjust(launcher + argv)
    for n in notes:
        print("launch: %s" % n, file=sys.stderr, flush=True)
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(main())
