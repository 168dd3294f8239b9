"""Helpers to run the minipt executable from tests and read what it printed.

Shared by test_cli.py and test_timeline_file.py (and free for other test modules):

* ``minipt_bin()`` / ``skip_reason()``: the executable from ``MINIPT_BIN``.
* ``run_minipt(args, ranks=...)``: runs it directly (``ranks=None``) or under
  ``$MINIPT_MPIEXEC -n RANKS --oversubscribe`` (default ``mpirun``), with a timeout so a
  hung job fails the test instead of hanging it.
* ``parse_performance(stdout)`` / ``parse_rank_table(stdout)`` / ``parse_bound(stdout)``:
  the machine-readable lines of ``minipt run`` and ``minipt plan``.
* ``launcher_free_stderr(stderr)``: stderr without Open MPI's own "a process exited
  with a non-zero status" banners, i.e. only what minipt printed.
"""

import os
import re
import shlex
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUTS = os.path.join(REPO_ROOT, "inputs")
DEMO_CONFIG = os.path.join(INPUTS, "experiments", "demo.toml")

# A job that has not finished after this long is hung (an error path that deadlocks).
DEFAULT_TIMEOUT_S = 60


def minipt_bin():
    """Path of the minipt executable from MINIPT_BIN, or None when unset or missing."""
    path = os.environ.get("MINIPT_BIN")
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def skip_reason():
    """Why tests that run minipt must skip, or None when they can run."""
    path = os.environ.get("MINIPT_BIN")
    if not path:
        return "MINIPT_BIN is not set (export MINIPT_BIN=/path/to/build/src/minipt)"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return "MINIPT_BIN=%s is not an executable file" % path
    return None


def mpiexec():
    """The MPI launcher as an argument list (env MINIPT_MPIEXEC, default mpirun)."""
    return shlex.split(os.environ.get("MINIPT_MPIEXEC", "mpirun"))


def mpi_env(extra=None):
    """Environment for minipt: Open MPI may run as root (containers, CI)."""
    env = dict(os.environ)
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    # When a process exits non-zero, Open MPI's launcher waits this long (default 1 s,
    # about 2 s in all) before killing the others. Every rank of a bad-input job exits
    # by itself (rank 0 after printing the message), so the wait only slows the error
    # tests down; a job that really hangs is still caught by the subprocess timeout.
    env.setdefault("OMPI_MCA_odls_base_sigkill_timeout", "0")
    # A Kokkos built with OpenMP prints advice (OMP_PROC_BIND unset, ...) on every start;
    # that depends on the environment, not on minipt, so it is kept out of the output
    # the tests inspect.
    env.setdefault("KOKKOS_DISABLE_WARNINGS", "1")
    if extra:
        env.update(extra)
    return env


def command_line(args, ranks=None):
    """The full command: minipt alone, or under the launcher with `ranks` processes."""
    binary = minipt_bin()
    if binary is None:
        raise RuntimeError(skip_reason())
    if ranks is None:
        return [binary] + list(args)
    return mpiexec() + ["-n", str(ranks), "--oversubscribe", binary] + list(args)


def run_minipt(args, ranks=None, timeout=DEFAULT_TIMEOUT_S, cwd=None, check=False):
    """Runs minipt and returns the CompletedProcess (text stdout/stderr).

    A job still running after `timeout` seconds raises subprocess.TimeoutExpired
    (subprocess.run kills it), which fails the calling test. With check=True a non-zero
    exit raises AssertionError carrying both output streams.
    """
    cmd = command_line(args, ranks)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=mpi_env())
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d\n--- stdout\n%s\n--- stderr\n%s" %
                             (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _key_values(line):
    out = {}
    for key, value in re.findall(r"(\w+)=(\S+)", line):
        out[key] = float(value) if re.fullmatch(_NUMBER, value) else value
    return out


def parse_performance(stdout):
    """The PERFORMANCE line of `minipt run` as a dict (numbers as float); exactly one."""
    lines = [l for l in stdout.splitlines() if l.startswith("PERFORMANCE ")]
    if len(lines) != 1:
        raise AssertionError("expected one PERFORMANCE line, got %d:\n%s" % (len(lines), stdout))
    return _key_values(lines[0])


def parse_bound(stdout):
    """The BOUND line of `minipt plan` as a dict; exactly one."""
    lines = [l for l in stdout.splitlines() if l.startswith("BOUND ")]
    if len(lines) != 1:
        raise AssertionError("expected one BOUND line, got %d:\n%s" % (len(lines), stdout))
    return _key_values(lines[0])


def parse_rank_table(stdout):
    """The per-rank table of `minipt run`: {rank: (tokens, microbatches, util, idle)}
    with utilisation and idle as fractions (the table prints percent to 0.1)."""
    rows = {}
    pattern = re.compile(r"^\s+(\d+) \|\s+(\d+) \|\s+(\d+) \|\s+(%s)%% \|\s+(%s)%%$" % (_NUMBER, _NUMBER))
    for line in stdout.splitlines():
        m = pattern.match(line)
        if m:
            rows[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), float(m.group(4)) / 100,
                                     float(m.group(5)) / 100)
    return rows


# Open MPI's launcher prints this banner, framed by lines of dashes, when a process exits
# with a non-zero status. It is the launcher's, not minipt's, so error-path tests drop it.
_LAUNCHER_BANNER_MARKERS = (
    "Primary job  terminated normally",
    "mpirun detected that one or more processes exited with non-zero status",
    "prterun detected that one or more processes exited with non-zero status",
)


def launcher_free_stderr(stderr):
    """stderr with Open MPI's non-zero-exit banners removed."""
    lines = stderr.splitlines()
    keep = []
    i = 0
    while i < len(lines):
        if set(lines[i].strip()) == {"-"}:
            # A framed block: find its closing dash line and drop it if it is a banner.
            j = i + 1
            while j < len(lines) and set(lines[j].strip()) != {"-"}:
                j += 1
            block = "\n".join(lines[i + 1:j])
            if j < len(lines) and any(m in block for m in _LAUNCHER_BANNER_MARKERS):
                i = j + 1
                continue
        keep.append(lines[i])
        i += 1
    return "\n".join(keep)
