"""Issue 31, the C++ side: simulate, calibrate and run never crash, hang or overwrite an
input. Each test is one of the issue's reproductions, made small:

  1. simulate on extreme allowed values and bad cost terms: exit 0 or 2, quickly; a
     mutation test of cost files (100 seeded mutations: exit 0 or 2 within the time
     limit, never a signal or a hang);
  2. calibrate on damaged timelines and bad --comm JSON: exit 2 naming the file and what
     is wrong; an unwritable --out before the fit;
  3. outputs that are inputs or each other (resolved paths: o.h5 vs ./o.h5): exit 2;
  4. a SIGSTOPped rank of four: the progress watchdog ends the job naming it;
  5. a FIFO as configuration, histogram, cost file or timeline: exit 2, never a hang;
  6. workloads beyond the documented budget: exit 2 naming the keys, quickly;
 10. simulate --out DIR fails before simulating; param_bytes = 2.5 is an error; a run's
     .h5 and .json carry the same run_id.
"""

import json
import os
import random
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

TINY_MODEL = os.path.join(mr.REPO_ROOT, "inputs", "models", "tiny.toml")
LIMIT_S = 30  # a bad input or an extreme value must end within this

CONFIG = """base = ["%s"]
[run]
steps = 3
warmup_steps = 1
[workload]
distribution = "uniform"
mean = 512.0
min = 256
max = 768
minibatch_size = 8
[balance]
scheme = "micro"
token_budget = 4096
[compute]
backend = "emulated"
""" % TINY_MODEL


def minipt(args, cwd=None, timeout=LIMIT_S):
    return mr.run_minipt(args, cwd=cwd, timeout=timeout)


def expect_exit2(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    for n in needles:
        assert n in proc.stderr, (n, proc.stderr)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A configuration, a simulated 2-rank timeline and the cost file calibrated from it."""
    d = tmp_path_factory.mktemp("reliability")
    cfg = d / "c.toml"
    cfg.write_text(CONFIG)
    tl = d / "t.h5"
    proc = minipt(["simulate", "--config", str(cfg), "--ranks", "2", "--out", str(tl), "--quiet"])
    assert proc.returncode == 0, proc.stderr
    cost = d / "cost.toml"
    proc = minipt(["calibrate", str(tl), "--out", str(cost)])
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "config": str(cfg), "timeline": str(tl), "cost": str(cost)}


def simulate(work, cost_text=None, sets=(), ranks=4, out=None, cwd=None):
    args = ["simulate", "--config", work["config"], "--ranks", str(ranks), "--quiet",
            "--set", "sim.gpus_per_node=2"]
    for s in sets:
        args += ["--set", s]
    if cost_text is not None:
        path = work["dir"] / ("cost_%d.toml" % (hash(cost_text) & 0xffffffff))
        path.write_text(cost_text)
        args += ["--cost", str(path)]
    args += ["--out", out or str(work["dir"] / "sim.h5")]
    start = time.monotonic()
    proc = minipt(args, cwd=cwd)
    return proc, time.monotonic() - start


# --- 1. simulate ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e-20", "1e-100", "1e-300"])
def test_tiny_sim_bandwidth_is_refused_with_its_bound(work, value):
    proc, took = simulate(work, sets=["sim.inter_bandwidth_GBps=" + value])
    expect_exit2(proc, "sim.inter_bandwidth_GBps", "1e-06..1e+06")
    assert took < LIMIT_S


def set_term(text, section, key, value):
    """The cost file with [section] key = value."""
    head = "[%s]\n" % section
    at = text.index(head)
    end = text.find("\n[", at + 1)
    block = text[at:end if end >= 0 else len(text)]
    new = re.sub(r"(?m)^%s = .*$" % re.escape(key), "%s = %s" % (key, value), block, count=1)
    assert new != block, (section, key)
    return text[:at] + new + text[at + len(block):]


@pytest.mark.parametrize("section,key,value,needle", [
    ("compute.block.forward", "a", "3000.0", "compute.block.forward.a is 3000, beyond its bound"),
    ("compute.embedding.forward", "a", "8.67e+05", "beyond its bound (allowed: 0..1000"),
    ("compute.block.backward", "c", "1e-2", "compute.block.backward.c is 0.01, beyond"),
    ("comm.inter.allgather", "bandwidth_GBps", "1e-300", "below its bound"),
    ("comm.intra.get", "latency_s", "7.0", "comm.intra.get.latency_s is 7, beyond"),
    ("model", "param_bytes", "2.5", "model.param_bytes must be 2 or 4"),
])
def test_cost_terms_beyond_their_bounds_are_refused(work, section, key, value, needle):
    text = open(work["cost"]).read()
    proc, took = simulate(work, set_term(text, section, key, value))
    expect_exit2(proc, "--cost", needle)
    assert took < LIMIT_S


def test_extreme_allowed_costs_end_quickly(work):
    """Every term at its bound: the run is either simulated or too long for the timeline
    (exit 2 naming the cost file), never a hang (the engine used to spin at large times)."""
    text = open(work["cost"]).read()
    for key, v in (("a", "1000.0"), ("b", "1.0"), ("c", "0.001")):
        text = re.sub(r"(?m)^%s = .*$" % key, "%s = %s" % (key, v), text)
    text = re.sub(r"(?m)^bandwidth_GBps = [1-9].*$", "bandwidth_GBps = 1e-06", text)
    text = re.sub(r"(?m)^latency_s = .*$", "latency_s = 1.0", text)
    proc, took = simulate(work, text)
    assert proc.returncode in (0, 2), proc.stderr
    assert took < LIMIT_S
    if proc.returncode == 2:
        assert "beyond the timeline's range" in proc.stderr, proc.stderr
    # Large but representable: simulated, with times far beyond what rounding keeps exact.
    big = re.sub(r"(?m)^a = .*$", "a = 999.0", open(work["cost"]).read())
    proc, took = simulate(work, big)
    assert proc.returncode == 0, proc.stderr
    assert took < LIMIT_S
    with h5py.File(work["dir"] / "sim.h5") as f:
        assert f["steps/t_end_ns"][:].max() > 1e12


def test_lengths_at_the_allowed_maximum_end(work):
    proc, took = simulate(work, sets=["workload.min=60000", "workload.max=65536",
                                      "workload.mean=65000", "balance.token_budget=65536",
                                      "workload.minibatch_size=4"])
    assert proc.returncode == 0, proc.stderr
    assert took < LIMIT_S
    # Near workload.max's own bound (1e15 tokens): times beyond the timeline, exit 2 (the
    # engine used to spin here).
    v = "999999999999999"
    proc, took = simulate(work, sets=["workload.min=" + v, "workload.max=" + v,
                                      "workload.mean=" + v, "balance.token_budget=" + v])
    expect_exit2(proc, "workload.max, compute.peak_tflops", "beyond the timeline's range")
    assert took < LIMIT_S


def mutate(text, rng):
    """One random damage to a cost file's text."""
    lines = text.split("\n")
    numeric = [i for i, l in enumerate(lines) if re.match(r"^[a-z_0-9]+ = [-0-9.]", l)]
    op = rng.randrange(10)
    if op >= 8:  # a value scaled by a power of ten (a typo in an exponent)
        i = rng.choice(numeric)
        key, old = lines[i].split(" = ")
        try:
            lines[i] = "%s = %r" % (key, float(old) * 10.0 ** rng.randrange(1, 13))
        except ValueError:
            pass
    elif op <= 2:  # a value replaced
        i = rng.choice(numeric)
        key = lines[i].split(" = ")[0]
        old = lines[i].split(" = ")[1]
        value = rng.choice([
            "0", "-1", "0.0", "1e300", "-1e300", "1e-300", "3000.0", "nan", "inf", "-inf", "2.5",
            "99999999999999999999", '"x"', "true", "[1, 2]", "{}", "", "1e308",
            old.replace("e-", "e+"), old + "0000", "0x10", "1_000", str(rng.uniform(0, 1e6)),
            str(rng.uniform(0, 1e-3)), str(10 ** rng.uniform(-12, 12))])
        lines[i] = "%s = %s" % (key, value)
    elif op == 3:  # a line removed
        del lines[rng.randrange(len(lines))]
    elif op == 4:  # a line duplicated
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 5:  # a byte flipped
        b = bytearray("\n".join(lines).encode())
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256)
        return bytes(b)
    elif op == 6:  # truncated
        t = "\n".join(lines)
        return t[:rng.randrange(len(t))].encode()
    else:  # a digit changed in a number
        i = rng.choice(numeric)
        digits = [k for k, c in enumerate(lines[i]) if c.isdigit()]
        if digits:
            k = rng.choice(digits)
            lines[i] = lines[i][:k] + str(rng.randrange(10)) + lines[i][k + 1:]
    return "\n".join(lines).encode()


MUTATIONS = 100


def test_cost_file_mutations_through_simulate(work):
    """100 seeded mutations of a calibrated cost file through `simulate` (4 ranks, 2 nodes):
    each exits 0 or 2 within LIMIT_S, never a signal (a negative return code), a run-time
    failure (1) or a hang."""
    text = open(work["cost"]).read()
    rng = random.Random(31)
    cases = [mutate(text, rng) for _ in range(MUTATIONS)]
    d = work["dir"] / "mutations"
    d.mkdir(exist_ok=True)

    def one(i):
        path = d / ("m%03d.toml" % i)
        path.write_bytes(cases[i])
        args = mr.command_line(["simulate", "--config", work["config"], "--ranks", "4",
                                "--set", "sim.gpus_per_node=2", "--cost", str(path), "--out",
                                str(d / ("m%03d.h5" % i)), "--quiet"])
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=LIMIT_S,
                               env=mr.mpi_env(), errors="replace")
            return i, p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            return i, "hang", ""

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(MUTATIONS)))
    crashes = [(i, rc, err[-300:]) for i, rc, err in results if rc not in (0, 2, "hang")]
    hangs = [i for i, rc, _ in results if rc == "hang"]
    ok = sum(1 for _, rc, _ in results if rc == 0)
    print("cost-file mutations: %d cases, %d exit 0, %d exit 2, %d crashes, %d hangs" %
          (len(results), ok, len(results) - ok - len(crashes) - len(hangs), len(crashes),
           len(hangs)))
    assert not crashes, crashes
    assert not hangs, hangs
    # Exit 2 names the cost file's key.
    for i, rc, err in results:
        if rc == 2:
            assert "--cost" in err, (i, err)


# --- 2. calibrate ----------------------------------------------------------------------

def damaged(src, dst, change):
    import shutil
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        change(f)


def set_attr(name, value):
    def change(f):
        del f.attrs[name]
        f.attrs[name] = value
    return change


def set_column(path, fn):
    def change(f):
        data = f[path][:]
        del f[path]
        f.create_dataset(path, data=fn(data))
    return change


def config_edit(pattern, new):
    def change(f):
        t = f.attrs["config_toml"]
        t = t.decode() if isinstance(t, bytes) else t
        t2 = re.sub(pattern, new, t, count=1)
        assert t2 != t
        del f.attrs["config_toml"]
        f.attrs["config_toml"] = t2
    return change


DAMAGE = [
    ("world_size_array", set_attr("world_size", np.array([1, 2], dtype=np.int64)),
     "attribute world_size is not a scalar"),
    ("warmup_steps_array", set_attr("warmup_steps", np.arange(1000, dtype=np.int64)),
     "attribute warmup_steps is not a scalar"),
    ("backend_array", set_attr("backend", np.array([b"a", b"b"])),
     "attribute backend is not a scalar"),
    ("world_size_huge", set_attr("world_size", 2e9), "world_size = 2000000000"),
    ("world_size_inconsistent", set_attr("world_size", np.int64(3)),
     "world_size = 3 but /steps holds 2 rank(s)"),
    ("schema_0", set_attr("schema_version", np.int64(0)), "attribute schema_version = 0"),
    ("schema_99", set_attr("schema_version", np.int64(99)), "attribute schema_version = 99"),
    ("schema_four", set_attr("schema_version", "four"),
     "attribute schema_version is a string, not an integer"),
    ("unit_out_of_range", set_column("events/unit", lambda a: a + 100000), "events/unit["),
    ("kind_out_of_range", set_column("events/kind", lambda a: a * 0 + 99), "events/kind["),
    ("rank_out_of_range", set_column("events/rank", lambda a: a - 5), "events/rank["),
    ("unequal_columns", set_column("events/t_end_ns", lambda a: a[: len(a) // 2]),
     "columns of unequal length"),
    ("float_column", set_column("events/step", lambda a: a.astype(np.float64)),
     "column events/step is a float, not an integer column"),
    ("two_dim_column", set_column("workload/length", lambda a: np.stack([a, a])),
     "column workload/length is not one-dimensional"),
    ("end_before_start", set_column("events/t_end_ns", lambda a: a - 10 ** 12),
     "events row 0 ends before it starts"),
    ("scale_zero", config_edit(r"(?m)^scale = .*$", "scale = 0.0"),
     "model.scale = 0.0 is outside (0, 1]"),
    ("missing_column", lambda f: f.__delitem__("steps/t_end_ns"), "column steps/t_end_ns is missing"),
]


@pytest.mark.parametrize("name,change,needle", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_calibrate_refuses_a_damaged_timeline(work, name, change, needle):
    bad = work["dir"] / ("bad_%s.h5" % name)
    damaged(work["timeline"], bad, change)
    out = work["dir"] / ("bad_%s.toml" % name)
    proc = minipt(["calibrate", str(bad), "--out", str(out)])
    expect_exit2(proc, str(bad), needle)
    assert not out.exists()


@pytest.mark.parametrize("text,needle", [
    ("{not json", "not JSON"),
    ('{"world": 2, "rows": [{"op": "allgather", "impl": "minipt-nccl", "bytes": "x"}]}',
     "a value of the wrong type"),
    ('{"world": 2, "rows": [{"op": 5}]}', "a value of the wrong type"),
    ('[1, 2]', "not run/bench/comm output"),
    ('{"world": 2, "rows": [{"op": "allgather", "impl": "minipt-nccl", "bytes": -5, '
     '"time_us": 1}]}', "not a finite number >= 0"),
])
def test_calibrate_bad_comm_json_names_the_file(work, text, needle):
    comm = work["dir"] / "comm.json"
    comm.write_text(text)
    proc = minipt(["calibrate", work["timeline"], "--comm", str(comm), "--out",
                   str(work["dir"] / "c.toml")])
    expect_exit2(proc, "--comm", str(comm), needle)


def test_calibrate_unwritable_out_is_found_before_the_fit(work):
    proc = minipt(["calibrate", work["timeline"], "--out", "/nonexistent-dir/x/c.toml"])
    expect_exit2(proc, "--out")
    assert "calibrated from" not in proc.stdout


# --- 3. outputs that are inputs or each other -------------------------------------------

def test_calibrate_out_naming_its_input_is_refused(work, tmp_path):
    import shutil
    tl = tmp_path / "in.h5"
    shutil.copy(work["timeline"], tl)
    before = tl.read_bytes()
    for out in ("in.h5", "./in.h5", str(tl), "../%s/in.h5" % tmp_path.name):
        proc = minipt(["calibrate", "in.h5", "--out", out], cwd=str(tmp_path))
        expect_exit2(proc, "--out", "is the same file as the input")
    os.symlink("in.h5", tmp_path / "link.h5")
    proc = minipt(["calibrate", "link.h5", "--out", "in.h5"], cwd=str(tmp_path))
    expect_exit2(proc, "--out", "is the same file as the input")
    assert tl.read_bytes() == before


RUN_SHORT = ["--set", "run.steps=2", "--set", "compute.backend=\"emulated\"",
             "--set", "model.scale=0.01", "--quiet"]


@pytest.mark.parametrize("args,needle", [
    (["--out", "o.h5", "--set", 'run.dump="./o.h5"'], "run.dump"),
    (["--out", "o.h5", "--set", 'run.dump="o.json"'], "run.dump"),
    (["--out", "o.h5", "--set", 'run.dump="c.toml"'], "run.dump"),
    (["--out", "h.h5", "--set", "workload.distribution=\"histogram\"",
      "--set", 'workload.histogram_file="h.h5"'], "run.out"),
    (["--out", "./sub/../c.h5", "--set", 'run.dump="c.h5"'], "run.dump"),
])
def test_run_outputs_colliding_with_each_other_or_inputs_are_refused(work, tmp_path, args,
                                                                      needle):
    (tmp_path / "c.toml").write_text(open(work["config"]).read())
    (tmp_path / "sub").mkdir()
    (tmp_path / "h.h5").write_text("length,count\n300,1\n")
    before = (tmp_path / "c.toml").read_bytes()
    proc = minipt(["run", "--config", "c.toml"] + RUN_SHORT + args, cwd=str(tmp_path))
    expect_exit2(proc, needle)
    assert re.search(r"is the same file as|is the file of run.out", proc.stderr), proc.stderr
    assert (tmp_path / "c.toml").read_bytes() == before
    assert (tmp_path / "h.h5").read_text() == "length,count\n300,1\n"
    assert not (tmp_path / "o.h5").exists()


def test_simulate_out_naming_its_cost_or_config_is_refused(work, tmp_path):
    import shutil
    shutil.copy(work["cost"], tmp_path / "cost.h5")
    proc = minipt(["simulate", "--config", work["config"], "--ranks", "2", "--cost", "cost.h5",
                   "--out", "./cost.h5"], cwd=str(tmp_path))
    expect_exit2(proc, "run.out", "is the same file as the input --cost")
    shutil.copy(work["config"], tmp_path / "c.h5")
    proc = minipt(["simulate", "--config", "c.h5", "--ranks", "2", "--out", "c.h5"],
                  cwd=str(tmp_path))
    expect_exit2(proc, "run.out", "is the same file as the input --config")


# --- 4. a stopped rank ------------------------------------------------------------------

def test_a_stopped_rank_ends_the_job_naming_it(work, tmp_path):
    """SIGSTOP of rank 2 of 4 in an emulated run: the progress watchdog (on by default; a
    2 s floor here) ends the job with exit 1 and names rank 2."""
    args = mr.command_line(["run", "--config", work["config"], "--set", "run.steps=20000",
                            "--set", "workload.minibatch_size=4", "--set", "run.trace=false",
                            "--set", "model.scale=0.01", "--set", "run.watchdog_floor_s=2",
                            "--out", str(tmp_path / "w.h5"), "--quiet"], ranks=4)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=mr.mpi_env(), start_new_session=True)
    stopped = None
    try:
        deadline = time.monotonic() + 60
        while stopped is None and time.monotonic() < deadline:
            time.sleep(0.5)
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
                    stat = open("/proc/%s/stat" % pid).read()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == proc.pid and b"OMPI_COMM_WORLD_RANK=2" in env:
                    time.sleep(3)  # a few steps timed first
                    os.kill(int(pid), signal.SIGSTOP)
                    stopped = int(pid)
                    break
        assert stopped is not None, "rank 2 not found"
        start = time.monotonic()
        out, err = proc.communicate(timeout=90)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if stopped is not None:
            try:
                os.kill(stopped, signal.SIGCONT)
                os.kill(stopped, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode != 0
    m = re.search(r"minipt: rank (\d+): error: step (\d+) stalled: .*; rank 2 did not reach step "
                  r"\2 \(stopped, hung or dead\?\)", err)
    assert m, err
    assert int(m.group(1)) != 2
    assert took < 30, (took, err)


# --- 5. FIFOs -------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["config", "histogram", "cost", "timeline", "comm"])
def test_a_fifo_input_is_refused_without_waiting(work, tmp_path, what):
    fifo = str(tmp_path / ("f.h5" if what == "timeline" else "f.toml"))
    os.mkfifo(fifo)
    base = ["--config", work["config"]]
    cmds = {
        "config": [["run", "--config", fifo, "--out", str(tmp_path / "o.h5")],
                   ["plan", "--config", fifo],
                   ["simulate", "--config", fifo, "--ranks", "2"]],
        "histogram": [[c] + base + ["--set", "workload.distribution=\"histogram\"",
                                    "--set", 'workload.histogram_file="%s"' % fifo]
                      + (["--ranks", "2"] if c != "run" else [])
                      + (["--out", str(tmp_path / "o.h5")] if c != "plan" else [])
                      for c in ("run", "plan", "simulate")],
        "cost": [["simulate"] + base + ["--ranks", "2", "--cost", fifo]],
        "timeline": [["calibrate", fifo, "--out", str(tmp_path / "c.toml")]],
        "comm": [["calibrate", work["timeline"], "--comm", fifo, "--out",
                  str(tmp_path / "c.toml")]],
    }[what]
    for args in cmds:
        start = time.monotonic()
        proc = minipt(args, timeout=20)
        expect_exit2(proc, fifo, "not a regular file")
        assert time.monotonic() - start < 20


# --- 6. the workload budget -----------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["plan", "--ranks", "1", "--set", "workload.minibatch_size=10000000", "--set",
      "run.steps=1", "--set", "run.warmup_steps=0"], "workload.minibatch_size: 10000000 sequences per step on 1 rank(s)"),
    (["simulate", "--ranks", "8", "--set", "workload.minibatch_size=10000000", "--set",
      "run.steps=1", "--set", "run.warmup_steps=0"], "workload.minibatch_size: 10000000 sequences per step on 8 rank(s)"),
    (["run", "--set", "run.steps=100000", "--set", "workload.minibatch_size=100000"],
     "run.steps, workload.minibatch_size: 100000 steps x 100000 sequences"),
])
def test_workloads_beyond_the_budget_are_refused_quickly(work, tmp_path, args, needle):
    start = time.monotonic()
    proc = minipt(args[:1] + ["--config", work["config"]] + args[1:] +
                  (["--out", str(tmp_path / "o.h5")] if args[0] != "plan" else []))
    expect_exit2(proc, needle, "Workload budget")
    assert time.monotonic() - start < 10


# --- 10. lower severity ----------------------------------------------------------------

def test_simulate_out_directory_fails_before_simulating(work, tmp_path):
    (tmp_path / "d.h5").mkdir()
    proc = minipt(["simulate", "--config", work["config"], "--ranks", "2", "--out",
                   str(tmp_path / "d.h5")])
    expect_exit2(proc, "run.out", "it is a directory")
    assert "simulated" not in proc.stdout


def test_run_h5_and_json_carry_one_run_id(work, tmp_path):
    ids = []
    for name in ("a", "b"):
        out = tmp_path / (name + ".h5")
        proc = minipt(["run", "--config", work["config"], "--out", str(out)] + RUN_SHORT)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(out) as f:
            h5_id = f.attrs["run_id"]
        h5_id = h5_id.decode() if isinstance(h5_id, bytes) else h5_id
        j = json.load(open(tmp_path / (name + ".json")))
        assert re.fullmatch(r"[0-9a-f]{32}", h5_id)
        assert j["run_id"] == h5_id
        ids.append(h5_id)
    assert ids[0] != ids[1]
    sim = tmp_path / "s.h5"
    assert minipt(["simulate", "--config", work["config"], "--ranks", "2", "--out", str(sim),
                   "--quiet"]).returncode == 0
    with h5py.File(sim) as f:
        assert len(f.attrs["run_id"]) == 32
