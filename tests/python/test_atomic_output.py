"""Atomic, checked output (issue 12): a full disk, symlinks and concurrent runs never
corrupt or lose a file. Each case asserts the exit code, a message naming the file, no
temp file left, and that a file already under the final name survives."""
import os
import shlex
import shutil
import subprocess
import tempfile

import h5py
import pytest

from conftest import REPO_ROOT, minipt_bin

RUN = ["run", "--config", "inputs/models/tiny.toml", "--set", "run.steps=2",
       "--set", "run.warmup_steps=1", "--set", "workload.minibatch_size=4",
       "--set", "workload.mean=64", "--set", "workload.max=128", "--quiet"]


def minipt(args, ranks=1, timeout=60):
    binary = minipt_bin()
    if binary is None:
        pytest.skip("MINIPT_BIN unset or missing")
    launcher = shlex.split(os.environ.get("MINIPT_MPIEXEC", "mpirun"))
    flags = shlex.split(os.environ.get("MINIPT_MPIEXEC_FLAGS", "--oversubscribe"))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.Popen([*launcher, "-n", str(ranks), *flags, binary, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO_ROOT)


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def temps(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


@pytest.fixture
def small_tmpfs():
    """A 64 KiB tmpfs (a full disk for any timeline); skips where mount is not allowed."""
    d = tempfile.mkdtemp()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", d], check=False)
    os.rmdir(d)


@pytest.mark.parametrize("which", ["out", "dump"])
def test_full_disk_keeps_existing_file(small_tmpfs, tmp_path, which):
    final = os.path.join(small_tmpfs, "x.h5")
    with open(final, "w") as f:
        f.write("good")
    args = list(RUN)
    if which == "out":
        args += ["--out", final]
    else:
        args += ["--out", str(tmp_path / "t.h5"), "--set", f"run.dump={final}"]
    rc, text = finish(minipt(args))
    assert rc == 1, text
    assert f"cannot write '{final}'" in text and "No space left on device" in text, text
    assert "Segmentation" not in text
    assert open(final).read() == "good"
    assert temps(small_tmpfs) == []


def test_symlink_at_final_name_target_untouched(tmp_path):
    target = tmp_path / "target"
    target.write_text("precious")
    (tmp_path / "x.h5").symlink_to(target)
    (tmp_path / "x.json").symlink_to(target)
    # Links at the names older versions used as temps.
    (tmp_path / "x.h5.tmp").symlink_to(target)
    (tmp_path / "x.json.tmp").symlink_to(target)
    rc, text = finish(minipt(RUN + ["--out", str(tmp_path / "x.h5"), "--set", "run.json=true"]))
    assert rc == 0, text
    assert target.read_text() == "precious"
    assert not (tmp_path / "x.h5").is_symlink()
    with h5py.File(tmp_path / "x.h5") as f:
        assert "events" in f
    assert [n for n in temps(tmp_path) if not (tmp_path / n).is_symlink()] == []


def test_two_concurrent_runs_same_out(tmp_path):
    out = str(tmp_path / "same.h5")
    procs = [minipt(RUN + ["--out", out, "--set", "run.json=true"]) for _ in range(2)]
    results = [finish(p) for p in procs]
    ok = [rc for rc, _ in results if rc == 0]
    for rc, text in results:
        assert rc == 0 or "same.h5" in text, text
    assert ok, results
    with h5py.File(out) as f:
        assert "events" in f and "summary" in f
    assert temps(tmp_path) == []
