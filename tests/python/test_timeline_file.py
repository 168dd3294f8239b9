"""End-to-end checks of the HDF5 timeline (README "HDF5 timeline schema") and JSON
summary that `minipt run` writes, on small emulated runs at 1, 2 and 4 ranks in both
modes (fsdp+micro and odc+mini).

Each run is the demo experiment (1.5B shape, emulated at H100 peak) cut down to 4 decoder
blocks, 3 steps and 6 lognormal sequences per step (512..20K tokens, 20K-token
microbatch budget), so that it takes a second or two; a "sparse" pair runs
3 sequences on 4 ranks, so one rank has no sequence in a step and fsdp must still run an
(empty) microbatch there.

Needs MINIPT_BIN=/path/to/minipt and h5py; MINIPT_MPIEXEC overrides the launcher.
"""

import json
import math
import os
import re
import shutil
import subprocess
import tomllib
from collections import defaultdict

import numpy as np
import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")
h5py = pytest.importorskip("h5py")

LAYERS = 4
STEPS = 3
WARMUP = 1  # demo.toml
MINIBATCH = 6
PEAK_TFLOPS = 989.0  # demo.toml

KIND_NAMES = ["forward", "backward", "recompute", "gather", "reduce_scatter", "get", "accumulate",
              "wait", "barrier", "optimizer", "allreduce", "accumulate_grad",
              "replica_reduce"]
KIND = {name: code for code, name in enumerate(KIND_NAMES)}
LANE_NAMES = ["compute", "pull", "push"]
BUSY_KINDS = [KIND[k] for k in ("forward", "backward", "recompute", "optimizer", "accumulate_grad")]
# Lanes fixed by the schema: pulls (gather/get) on lane 1, pushes on lane 2, compute on 0.
KIND_LANE = {KIND["gather"]: 1, KIND["get"]: 1, KIND["reduce_scatter"]: 2, KIND["accumulate"]: 2,
             KIND["forward"]: 0, KIND["backward"]: 0, KIND["recompute"]: 0, KIND["optimizer"]: 0,
             KIND["accumulate_grad"]: 0, KIND["replica_reduce"]: 0}
MODES = {"fsdp": "micro", "odc": "mini"}

MIN_LENGTH, MAX_LENGTH = 512, 20000
WORKLOAD_NAME = "qa-lognormal"
# Everything the checks rely on is set here, so edits to demo.toml do not break them.
COMMON = ["--set", "model.layers=%d" % LAYERS, "--set", "run.steps=%d" % STEPS,
          "--set", "run.warmup_steps=%d" % WARMUP, "--set", "compute.peak_tflops=%r" % PEAK_TFLOPS,
          "--set", 'compute.backend="emulated"', "--set", 'workload.name="%s"' % WORKLOAD_NAME,
          "--set", 'workload.distribution="lognormal"', "--set", "workload.mean=6000.0",
          "--set", "workload.sigma=1.0", "--set", "workload.min=%d" % MIN_LENGTH,
          "--set", "workload.max=%d" % MAX_LENGTH, "--set", "balance.token_budget=%d" % MAX_LENGTH,
          "--set", "workload.minibatch_size=%d" % MINIBATCH]

RUN_IDS = ["%s-%d" % (mode, ranks) for ranks in (1, 2, 4) for mode in MODES]
SPARSE_IDS = ["%s-sparse" % mode for mode in MODES]


class Run:
    """One finished run: paths, console output and the file's tables as numpy arrays."""

    def __init__(self, run_id, h5_path, proc):
        self.id = run_id
        self.mode = run_id.split("-")[0]
        self.h5_path = h5_path
        self.json_path = h5_path[:-3] + ".json"
        self.stdout = proc.stdout
        with h5py.File(h5_path, "r") as f:
            self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
            self.events = {k: f["events"][k][:] for k in f["events"]}
            self.event_attrs = {k: [_plain(x) for x in v] for k, v in f["events"].attrs.items()}
            self.workload = {k: f["workload"][k][:] for k in f["workload"]}
            self.steps = {k: f["steps"][k][:] for k in f["steps"]}
            self.summary = {k: _plain(v) for k, v in f["summary"].attrs.items()}
            self.summary_sets = {k: f["summary"][k][:] for k in f["summary"]}
            self.dtypes = {"%s/%s" % (g, k): f[g][k].dtype for g in ("events", "workload", "steps", "summary")
                           for k in f[g]}
            self.compression = {"%s/%s" % (g, k): (f[g][k].compression, f[g][k].compression_opts)
                                for g in ("events", "workload", "steps") for k in f[g]}
        self.world = int(self.attrs["world_size"])
        self.minibatch = MINIBATCH if "sparse" not in run_id else 3


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("timelines")
    specs = {}
    for run_id in RUN_IDS:
        mode, ranks = run_id.split("-")
        specs[run_id] = (mode, int(ranks), COMMON)
    for run_id in SPARSE_IDS:
        mode = run_id.split("-")[0]
        specs[run_id] = (mode, 4, COMMON + ["--set", "workload.minibatch_size=3"])
    result = {}
    for run_id, (mode, ranks, extra) in specs.items():
        path = str(out_dir / (run_id + ".h5"))
        args = (["run", "--config", mr.DEMO_CONFIG] + extra +
                ["--set", "run.mode=%s" % mode, "--set", "balance.scheme=%s" % MODES[mode],
                 "--out", path])
        proc = mr.run_minipt(args, ranks=ranks, timeout=120, check=True)
        result[run_id] = Run(run_id, path, proc)
    return result


@pytest.fixture(params=RUN_IDS + SPARSE_IDS)
def run(request, runs):
    return runs[request.param]


def step_rank_groups(table):
    groups = defaultdict(list)
    for i, (s, r) in enumerate(zip(table["step"], table["rank"])):
        groups[(int(s), int(r))].append(i)
    return groups


# --- schema ----------------------------------------------------------------------------


def test_root_attributes(run):
    a = run.attrs
    assert a["schema_version"] == 4
    assert a["minipt_version"] and a["git_revision"]
    assert a["mode"] == run.mode and a["balance"] == MODES[run.mode]
    assert a["backend"] == "emulated"
    assert a["workload"] == WORKLOAD_NAME
    assert a["world_size"] == (4 if "sparse" in run.id else int(run.id.split("-")[1]))
    assert len(a["hosts"].split(";")) == run.world and all(a["hosts"].split(";"))
    assert len(a["devices"].split(";")) == run.world
    assert 0 <= a["clock_error_bound_ns"] < 100_000_000
    assert a["peak_tflops"] == PEAK_TFLOPS and isinstance(a["peak_tflops"], float)
    assert a["warmup_steps"] == WARMUP
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)", a["created_utc"])
    config = tomllib.loads(a["config_toml"])
    assert config["run"]["mode"] == run.mode and config["balance"]["scheme"] == MODES[run.mode]
    assert config["model"]["layers"] == LAYERS and config["run"]["steps"] == STEPS
    assert config["workload"]["minibatch_size"] == run.minibatch
    assert config["run"]["out"] == run.h5_path


def test_column_types(run):
    t = run.dtypes
    for col in ("rank", "step", "microbatch", "unit"):
        assert t["events/" + col] == np.int32, col
    assert t["events/kind"] == np.int8 and t["events/lane"] == np.int8
    for col in ("t_start_ns", "t_end_ns", "bytes", "tokens"):
        assert t["events/" + col] == np.int64, col
    assert t["events/flops"] == np.float64
    for col in ("step", "rank", "microbatch", "sequence"):
        assert t["workload/" + col] == np.int32, col
    assert t["workload/length"] == np.int64
    for col, dtype in (("step", np.int32), ("rank", np.int32), ("tokens", np.int64),
                       ("microbatches", np.int32), ("t_start_ns", np.int64), ("t_end_ns", np.int64),
                       ("compute_ns", np.int64), ("loss", np.float64)):
        assert t["steps/" + col] == dtype, col
    assert t["summary/utilization"] == np.float64 and t["summary/idle_fraction"] == np.float64
    for table in (run.events, run.workload, run.steps):
        assert len({len(c) for c in table.values()}) == 1, "columns of one table differ in length"
    assert len(run.events["rank"]) > 0
    for name, (codec, level) in run.compression.items():
        assert (codec, level) == ("gzip", 4), name
    assert run.event_attrs["kind_names"] == KIND_NAMES
    assert run.event_attrs["lane_names"] == LANE_NAMES


def test_every_rank_and_step_present(run):
    ranks = set(range(run.world))
    assert set(run.events["rank"].tolist()) == ranks
    assert set(run.steps["rank"].tolist()) == ranks
    pairs = list(zip(run.steps["step"].tolist(), run.steps["rank"].tolist()))
    assert sorted(pairs) == [(s, r) for s in range(STEPS) for r in range(run.world)]
    assert set(run.events["step"].tolist()) == set(range(STEPS))


def test_events_sorted_and_not_overlapping(run):
    e = run.events
    assert np.all(e["t_end_ns"] >= e["t_start_ns"])
    key = list(zip(e["rank"].tolist(), e["lane"].tolist(), e["t_start_ns"].tolist()))
    assert key == sorted(key), "events not sorted by (rank, lane, t_start_ns)"
    same_lane = (e["rank"][1:] == e["rank"][:-1]) & (e["lane"][1:] == e["lane"][:-1])
    gap = e["t_start_ns"][1:] - e["t_end_ns"][:-1]
    bad = np.nonzero(same_lane & (gap < 0))[0]
    assert bad.size == 0, "overlapping events on one (rank, lane) at rows %s" % bad[:5]
    assert e["t_start_ns"].min() >= -run.attrs["clock_error_bound_ns"]


def test_event_codes(run):
    e = run.events
    kinds, lanes = e["kind"].astype(int), e["lane"].astype(int)
    assert set(kinds.tolist()) <= set(range(len(KIND_NAMES)))
    assert set(lanes.tolist()) <= {0, 1, 2}
    for kind, lane in KIND_LANE.items():
        assert np.all(lanes[kinds == kind] == lane), KIND_NAMES[kind]
    assert e["unit"].min() >= -1 and e["unit"].max() <= LAYERS + 1
    assert e["step"].min() >= 0 and e["step"].max() < STEPS, "an event outside every step"
    assert e["microbatch"].min() >= -1
    comm = np.isin(kinds, [KIND[k] for k in ("gather", "reduce_scatter", "get", "accumulate")])
    assert np.all(e["bytes"][comm] > 0), "communication without bytes"
    work = np.isin(kinds, [KIND[k] for k in ("forward", "backward", "recompute")])
    assert np.all(e["tokens"][work] > 0) and np.all(e["flops"][work] >= 0)
    # Every unit but the embedding (a table lookup) does matrix FLOPs.
    assert np.all(e["flops"][work & (e["unit"] > 0)] > 0)
    present = set(kinds.tolist())
    if run.mode == "fsdp":
        assert {KIND["gather"], KIND["reduce_scatter"]} <= present
        assert not present & {KIND["get"], KIND["accumulate"]}
    else:
        assert {KIND["get"], KIND["accumulate"]} <= present
        assert not present & {KIND["gather"], KIND["reduce_scatter"]}


def test_events_lie_inside_their_step(run):
    e, st = run.events, run.steps
    window = {(int(s), int(r)): (a, b) for s, r, a, b in
              zip(st["step"], st["rank"], st["t_start_ns"], st["t_end_ns"])}
    for (step, rank), rows in step_rank_groups(e).items():
        lo, hi = window[(step, rank)]
        assert e["t_start_ns"][rows].min() >= lo and e["t_end_ns"][rows].max() <= hi, (step, rank)
    # Steps follow each other on every rank.
    for rank in range(run.world):
        ends = [window[(s, rank)] for s in range(STEPS)]
        assert all(ends[s][1] <= ends[s + 1][0] for s in range(STEPS - 1))


# --- consistency between tables --------------------------------------------------------


def test_compute_ns_is_busy_event_time(run):
    e, st = run.events, run.steps
    busy = np.isin(e["kind"], BUSY_KINDS)
    dur = e["t_end_ns"] - e["t_start_ns"]
    groups = step_rank_groups(e)
    for i in range(len(st["step"])):
        rows = groups.get((int(st["step"][i]), int(st["rank"][i])), [])
        assert st["compute_ns"][i] == int(dur[rows][busy[rows]].sum())
        assert 0 < st["compute_ns"][i] <= st["t_end_ns"][i] - st["t_start_ns"][i]


def test_tokens_match_workload(run):
    w, st = run.workload, run.steps
    for step in range(STEPS):
        in_step = w["step"] == step
        assert st["tokens"][st["step"] == step].sum() == w["length"][in_step].sum()
        for rank in range(run.world):
            row = (st["step"] == step) & (st["rank"] == rank)
            assert st["tokens"][row].item() == w["length"][in_step & (w["rank"] == rank)].sum()
    assert np.all(w["length"] >= MIN_LENGTH) and np.all(w["length"] <= MAX_LENGTH)


def test_every_sequence_assigned_once(run):
    w = run.workload
    for step in range(STEPS):
        seqs = sorted(w["sequence"][w["step"] == step].tolist())
        assert seqs == list(range(run.minibatch)), "step %d: %s" % (step, seqs)
    assert set(w["rank"].tolist()) <= set(range(run.world))


def test_microbatches_match_workload_and_events(run):
    """/steps.microbatches counts the non-empty microbatches of /workload; each non-empty
    microbatch runs forward and backward over every unit and recomputes every block, with
    the microbatch's tokens; the per-microbatch budget holds."""
    w, e, st = run.workload, run.events, run.steps
    mb_tokens = defaultdict(int)
    for s, r, m, n in zip(w["step"], w["rank"], w["microbatch"], w["length"]):
        mb_tokens[(int(s), int(r), int(m))] += int(n)
    assert max(mb_tokens.values()) <= MAX_LENGTH  # the token budget
    for i in range(len(st["step"])):
        s, r = int(st["step"][i]), int(st["rank"][i])
        assert st["microbatches"][i] == len([k for k in mb_tokens if k[:2] == (s, r)])
    units = list(range(LAYERS + 2))
    for kind, want_units in (("forward", units), ("backward", units),
                             ("recompute", list(range(1, LAYERS + 1)))):
        sel = e["kind"] == KIND[kind]
        seen = defaultdict(list)
        for s, r, m, u, n in zip(e["step"][sel], e["rank"][sel], e["microbatch"][sel], e["unit"][sel],
                                 e["tokens"][sel]):
            seen[(int(s), int(r), int(m))].append((int(u), int(n)))
        assert set(seen) == set(mb_tokens), kind
        for key, rows in seen.items():
            assert sorted(u for u, _ in rows) == want_units, (kind, key)
            assert {n for _, n in rows} == {mb_tokens[key]}, (kind, key)


def test_loss_same_on_all_ranks(run):
    st = run.steps
    for step in range(STEPS):
        losses = st["loss"][st["step"] == step]
        assert np.all(np.isfinite(losses)) and np.all(losses > 0)
        assert np.all(losses == losses[0])


@pytest.mark.parametrize("run_id", [i for i in RUN_IDS + SPARSE_IDS if i.startswith("fsdp")])
def test_fsdp_ranks_run_equal_microbatch_counts(runs, run_id):
    """fsdp ranks meet in every collective, so they run the same number of microbatches,
    empty ones included (those gather and reduce-scatter but compute nothing);
    /steps.microbatches counts only the non-empty ones."""
    run = runs[run_id]
    e, st = run.events, run.steps
    pulls = e["kind"] == KIND["gather"]
    for step in range(STEPS):
        counts = []
        for rank in range(run.world):
            sel = pulls & (e["step"] == step) & (e["rank"] == rank)
            counts.append(len(set(e["microbatch"][sel].tolist())))
        nonempty = st["microbatches"][st["step"] == step]
        assert len(set(counts)) == 1, "step %d: microbatches per rank %s" % (step, counts)
        assert counts[0] >= nonempty.max() >= 1
    # The collectives themselves match: same (step, microbatch, unit, kind, bytes) on every rank.
    coll = np.isin(e["kind"], [KIND["gather"], KIND["reduce_scatter"], KIND["allreduce"]])
    signature = [sorted(zip(*(e[c][coll & (e["rank"] == r)].tolist()
                              for c in ("step", "microbatch", "unit", "kind", "bytes"))))
                 for r in range(run.world)]
    assert all(sig == signature[0] for sig in signature)


def test_sparse_steps(runs):
    """3 sequences on 4 ranks: some rank has none in each step. Under fsdp it still runs
    (empty) microbatches with everyone; under odc it pulls nothing for that step."""
    for run_id in SPARSE_IDS:
        r = runs[run_id]
        e, st = r.events, r.steps
        for step in range(STEPS):
            idle = [rank for rank in range(4)
                    if st["tokens"][(st["step"] == step) & (st["rank"] == rank)].item() == 0]
            assert idle, "%s step %d: every rank got a sequence" % (run_id, step)
            for rank in idle:
                mine = (e["step"] == step) & (e["rank"] == rank)
                assert not np.any(mine & (e["kind"] == KIND["forward"]))
                assert st["microbatches"][(st["step"] == step) & (st["rank"] == rank)].item() == 0
                pulls = np.count_nonzero(mine & (e["lane"] == 1))
                if r.mode == "fsdp":
                    assert pulls > 0, "fsdp rank %d skipped the collectives of step %d" % (rank, step)
                else:
                    assert pulls == 0, "odc rank %d pulled weights it did not use" % rank


def test_workload_same_for_every_mode_and_rank_count(runs):
    """The workload depends on the seed only: every run sees the same lengths per step."""
    def lengths(r):
        w = r.workload
        return [sorted(w["length"][w["step"] == s].tolist()) for s in range(STEPS)]
    reference = lengths(runs[RUN_IDS[0]])
    for run_id in RUN_IDS:
        assert lengths(runs[run_id]) == reference, run_id


# --- summary figures -------------------------------------------------------------------


def expected_summary(run):
    """The /summary figures recomputed from /steps and /events per the README."""
    st, e = run.steps, run.events
    first = WARMUP if WARMUP < STEPS else 0
    step_s = []
    for s in range(STEPS):
        sel = st["step"] == s
        step_s.append((int(st["t_end_ns"][sel].max()) - int(st["t_start_ns"][sel].min())) * 1e-9)
    seconds = sum(step_s[first:])
    measured = st["step"] >= first
    tokens = int(st["tokens"][measured].sum())
    util = [st["compute_ns"][measured & (st["rank"] == r)].sum() * 1e-9 / seconds
            for r in range(run.world)]
    # MFU counts the model's FLOPs (forward and backward), not recomputation.
    model_flops = e["flops"][(e["step"] >= first) &
                             np.isin(e["kind"], [KIND["forward"], KIND["backward"]])].sum()
    return {
        "tokens_per_s": tokens / seconds,
        "tokens_per_s_per_rank": tokens / seconds / run.world,
        "step_ms": seconds / (STEPS - first) * 1e3,
        "utilization": sum(util) / run.world,
        "idle_fraction": 1 - sum(util) / run.world,
        "mfu": model_flops / (seconds * run.world * PEAK_TFLOPS * 1e12),
        "steps_measured": STEPS - first,
        "tokens": tokens,
        "utilization_per_rank": util,
        "step_seconds": step_s,
    }


def test_summary_recomputed_from_tables(run):
    want = expected_summary(run)
    got = run.summary
    for key in ("tokens_per_s", "tokens_per_s_per_rank", "step_ms", "utilization", "idle_fraction",
                "mfu"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert got["steps_measured"] == want["steps_measured"]
    assert got["tokens"] == want["tokens"]
    assert run.summary_sets["utilization"] == pytest.approx(want["utilization_per_rank"], rel=1e-9)
    assert run.summary_sets["idle_fraction"] == pytest.approx(
        [1 - u for u in want["utilization_per_rank"]], rel=1e-9, abs=1e-12)
    assert 0 < got["utilization"] <= 1 and 0 < got["mfu"] <= got["utilization"]


def test_summary_equals_console(run):
    perf = mr.parse_performance(run.stdout)
    s = run.summary
    assert perf["mode"] == run.mode and perf["balance"] == MODES[run.mode]
    assert perf["ranks"] == run.world
    # Printed with %.1f, %.4f and %.3f: equal within half the last digit.
    for key, half_digit in (("tokens_per_s", 0.05), ("tokens_per_s_per_rank", 0.05),
                            ("utilization", 5e-5), ("idle_fraction", 5e-5), ("step_ms", 5e-4),
                            ("mfu", 5e-5)):
        assert abs(perf[key] - s[key]) <= half_digit * 1.001, key
    table = mr.parse_rank_table(run.stdout)
    assert sorted(table) == list(range(run.world))
    st = run.steps
    measured = st["step"] >= WARMUP
    for rank, (tokens, microbatches, util, idle) in table.items():
        mine = measured & (st["rank"] == rank)
        assert tokens == st["tokens"][mine].sum()
        assert microbatches == st["microbatches"][mine].sum()
        assert abs(util - run.summary_sets["utilization"][rank]) <= 5e-4 * 1.001
        assert abs(idle - run.summary_sets["idle_fraction"][rank]) <= 5e-4 * 1.001
    # Per-step progress lines: tokens of the whole step and its global time; no loss
    # column (emulated gradients are stand-ins), and the backend is named once.
    step_lines = re.findall(
        r"^step\s+(\d+) \| (\w+) \| tokens\s+(\d+) \|(?: loss (\S+) \|)?\s+(\S+) ms",
        run.stdout, re.M)
    assert run.stdout.count("backend emulated") == 1, run.stdout
    assert "| backend emulated | transport" in run.stdout, run.stdout
    assert [int(l[0]) for l in step_lines] == list(range(STEPS))
    want = expected_summary(run)
    for step, mode, tokens, loss, ms in step_lines:
        step = int(step)
        assert mode == run.mode
        assert int(tokens) == st["tokens"][st["step"] == step].sum()
        assert loss == ""  # emulated: no loss column
        assert float(ms) == pytest.approx(want["step_seconds"][step] * 1e3, abs=5e-3)
    assert "timeline: %s" % run.h5_path in run.stdout


# --- files -----------------------------------------------------------------------------


def test_json_agrees_with_h5(run):
    with open(run.json_path) as f:
        js = json.load(f)
    assert js["h5"] == run.h5_path
    for key, value in js.items():
        if key in ("summary", "h5", "provenance", "verification"):
            continue
        assert key in run.attrs, key
        if isinstance(value, float):
            assert value == pytest.approx(run.attrs[key], rel=1e-9)
        else:
            assert value == run.attrs[key], key
    for key in ("schema_version", "mode", "balance", "world_size", "config_toml", "git_revision"):
        assert key in js
    # The provenance object (src/trace/provenance.hpp) agrees with the file's attributes.
    prov = js["provenance"]
    for key in ("minipt_version", "git_revision", "created_utc", "world_size"):
        assert prov[key] == run.attrs[key], key
    assert ";".join(prov["hosts"]) == run.attrs["hosts"]
    assert ";".join(prov["devices"]) == run.attrs["devices"]
    assert len(prov["hosts"]) == len(prov["devices"]) == run.world
    assert isinstance(prov["mpi_library"], str) and prov["mpi_library"]
    assert prov["command_line"][1] == "run"
    # What run/suite compares between modes: the losses the file's steps record.
    v = js["verification"]
    assert v["passed"] is True
    assert len(v["losses"]) >= 1
    assert v["final_loss"] == v["losses"][-1]
    assert v["parameter_norm"] > 0
    s = js["summary"]
    for key in ("tokens_per_s", "tokens_per_s_per_rank", "step_ms", "utilization", "idle_fraction",
                "mfu"):
        assert s[key] == pytest.approx(run.summary[key], rel=1e-8, abs=1e-12), key
    assert s["steps_measured"] == run.summary["steps_measured"] and s["tokens"] == run.summary["tokens"]
    assert s["utilization_per_rank"] == pytest.approx(list(run.summary_sets["utilization"]), rel=1e-8)
    assert s["step_seconds"] == pytest.approx(expected_summary(run)["step_seconds"], rel=1e-8)


def test_no_temporaries_left(run):
    directory = os.path.dirname(run.h5_path)
    stem = os.path.basename(run.h5_path)[:-3]
    names = [n for n in os.listdir(directory) if n.startswith(stem + ".")]
    assert sorted(names) == [stem + ".h5", stem + ".json"]


def test_h5dump_reads_header(run):
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed")
    proc = subprocess.run([h5dump, "-H", run.h5_path], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for group in ("events", "workload", "steps", "summary"):
        assert 'GROUP "%s"' % group in proc.stdout
    assert math.isfinite(run.summary["tokens_per_s"])


def test_untraced_run(tmp_path):
    """run.trace = false: an empty /events table (still a valid file), /steps and the
    throughput figures as usual, utilisation and idle unknown (NaN: no compute-busy time was
    recorded; n/a on the console)."""
    path = str(tmp_path / "untraced.h5")
    proc = mr.run_minipt(["run", "--config", mr.DEMO_CONFIG] + COMMON +
                         ["--set", "run.trace=false", "--out", path], ranks=2, check=True)
    perf = mr.parse_performance(proc.stdout)
    with h5py.File(path, "r") as f:
        assert all(f["events"][k].shape == (0,) for k in f["events"])
        assert len(f["events"]) == 11
        assert f["steps/step"].shape == (STEPS * 2,)
        assert np.all(f["steps/compute_ns"][:] == 0)
        summary = {k: _plain(v) for k, v in f["summary"].attrs.items()}
        tokens = int(f["steps/tokens"][:][f["steps/step"][:] >= WARMUP].sum())
    assert np.isnan(summary["utilization"]) and np.isnan(summary["idle_fraction"])
    assert perf["utilization"] == "n/a" and perf["idle_fraction"] == "n/a", perf
    assert summary["tokens"] == tokens and summary["tokens_per_s"] > 0 and summary["mfu"] > 0
    assert perf["tokens_per_s"] == pytest.approx(summary["tokens_per_s"], abs=0.051)
