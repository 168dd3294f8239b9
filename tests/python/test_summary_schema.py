"""NAME.json against its JSON Schema (schema/run-summary.schema.json), of `minipt run` and of
`minipt simulate` (one field table writes both: src/app/results.cpp), and the provenance
it records: library versions, build settings, the rank -> host/GPU map, the scheduler's and
transports' environment, and the revision of minipt's own source tree (not that of a
repository the tree happens to sit inside: cmake/revision.cmake).

Needs python3-jsonschema (run/deps.sh) and MINIPT_BIN for the tests that run minipt.
"""

import copy
import json
import os
import shutil
import subprocess

import pytest

import minipt_runner as mr

jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema is not installed "
                                 "(run/deps.sh installs it)")

SCHEMA_PATH = os.path.join(mr.REPO_ROOT, "schema", "run-summary.schema.json")
SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=4"]
needs_minipt = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")


def validator():
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    if mr.skip_reason():
        pytest.skip(mr.skip_reason())
    out = tmp_path_factory.mktemp("schema") / "run.h5"
    env = mr.mpi_env({"SLURM_JOB_ID": "4242", "NCCL_DEBUG": "WARN", "UCX_TLS": "self,sm",
                      "CUDA_VISIBLE_DEVICES": "0,1", "UNRELATED_VARIABLE": "x"})
    cmd = mr.command_line(["run", "--config", mr.DEMO_CONFIG] + SHORT +
                          ["--set", 'run.mode="odc"', "--out", str(out), "--quiet"], ranks=2)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=mr.DEFAULT_TIMEOUT_S,
                          env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out.with_suffix(".json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """The JSON summary of `minipt simulate` (4 ranks), beside its timeline."""
    if mr.skip_reason():
        pytest.skip(mr.skip_reason())
    out = tmp_path_factory.mktemp("schema_sim") / "sim.h5"
    proc = mr.run_minipt(["simulate", "--config", mr.DEMO_CONFIG] + SHORT +
                         ["--set", 'run.mode="odc"', "--ranks", "4", "--out", str(out), "--quiet"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(out.parent)) == ["sim.h5", "sim.json"]
    with open(out.with_suffix(".json")) as f:
        return json.load(f), str(out), proc.stdout


@needs_minipt
def test_summary_matches_schema(summary):
    errors = sorted(validator().iter_errors(summary), key=str)
    assert not errors, "\n".join(e.message + " at " + "/".join(map(str, e.path)) for e in errors)


@needs_minipt
@pytest.mark.parametrize("path,value", [
    (("summary", "utilization"), 1.5),
    (("provenance", "software", "nccl"), None),
    (("provenance", "ranks"), []),
    (("clock_error_bound_ns",), -1),
    (("verification", "passed"), False),
    (("git_revision",), "not a revision"),
])
def test_schema_rejects_a_broken_summary(summary, path, value):
    broken = copy.deepcopy(summary)
    node = broken
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    assert list(validator().iter_errors(broken)), "schema accepted %s = %r" % (path, value)


@needs_minipt
def test_simulated_summary_matches_schema(simulated):
    doc = simulated[0]
    errors = sorted(validator().iter_errors(doc), key=str)
    assert not errors, "\n".join(e.message + " at " + "/".join(map(str, e.path)) for e in errors)
    assert doc["backend"] == "simulated" and doc["world_size"] == 4
    assert doc["verification"] == "not applicable (simulated)"
    # Provenance: the simulating process (one rank), not the simulated ranks.
    assert doc["provenance"]["world_size"] == 1 and doc["provenance"]["command_line"][1] == "simulate"


RUN_ONLY = {"onesided_same_node", "onesided_other_node", "collectives_same_node",
            "collectives_other_node", "replica_reduce", "replica_transport", "kernel_tuning",
            "peak_tflops_source"}
SIMULATE_ONLY = {"sim_cost_model", "sim_nodes", "sim_traced_ranks", "sim_wall_s"}


@needs_minipt
def test_simulate_and_run_write_the_same_fields(summary, simulated):
    doc = simulated[0]
    assert set(summary) - set(doc) == RUN_ONLY
    assert set(doc) - set(summary) == SIMULATE_ONLY
    assert set(doc["summary"]) == set(summary["summary"])
    assert set(doc["provenance"]) == set(summary["provenance"])

    def kind(v):
        return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
    for key in set(doc) & set(summary) - {"verification"}:
        assert kind(doc[key]) == kind(summary[key]), key
    for key in doc["summary"]:
        assert kind(doc["summary"][key]) == kind(summary["summary"][key]), key


@needs_minipt
def test_simulated_summary_agrees_with_its_timeline_and_console(simulated):
    doc, h5, stdout = simulated
    h5py = pytest.importorskip("h5py")
    assert doc["h5"] == h5
    with h5py.File(h5, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        figures = dict(f["summary"].attrs.items())
    top = {k: v for k, v in doc.items() if k not in ("summary", "h5", "provenance", "verification")}
    assert set(top) == set(attrs)
    for key, value in top.items():
        assert value == (pytest.approx(attrs[key]) if isinstance(value, float) else attrs[key]), key
    for key in ("tokens_per_s", "step_ms", "utilization", "mfu"):
        assert doc["summary"][key] == pytest.approx(float(figures[key]), rel=1e-12), key
    perf = mr.parse_performance(stdout)
    assert perf["mode"] == doc["mode"] and perf["ranks"] == doc["world_size"]
    assert perf["tokens_per_s"] == pytest.approx(doc["summary"]["tokens_per_s"], abs=0.05)


@needs_minipt
@pytest.mark.parametrize("key,value", [("sim_wall_s", None), ("verification", None),
                                       ("verification", {"passed": True}),
                                       ("sim_nodes", 0)])
def test_schema_rejects_a_broken_simulated_summary(simulated, key, value):
    broken = copy.deepcopy(simulated[0])
    if value is None:
        del broken[key]
    else:
        broken[key] = value
    assert list(validator().iter_errors(broken)), "schema accepted %s = %r" % (key, value)


@needs_minipt
def test_schema_rejects_a_run_summary_without_run_fields(summary):
    for key in ("replica_reduce", "verification"):
        broken = copy.deepcopy(summary)
        del broken[key]
        assert list(validator().iter_errors(broken)), key
    broken = copy.deepcopy(summary)
    broken["verification"] = "not applicable (simulated)"
    assert list(validator().iter_errors(broken))


@needs_minipt
def test_provenance_records_versions_ranks_and_environment(summary):
    prov = summary["provenance"]
    software = prov["software"]
    assert software["mpi_library"] == prov["mpi_library"]
    assert software["hdf5"][0].isdigit(), software
    assert software["compiler"].split()[0] in ("GNU", "Clang", "IntelLLVM", "NVHPC"), software
    assert prov["build"]["type"], prov["build"]
    ranks = prov["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert [r["host"] for r in ranks] == prov["hosts"]
    assert [r["device"] for r in ranks] == prov["devices"]
    assert {r["local_rank"] for r in ranks} == {0, 1}  # one host
    assert all(r["cuda_visible_devices"] == "0,1" for r in ranks)
    env = prov["environment"]
    assert env["SLURM_JOB_ID"] == "4242" and env["NCCL_DEBUG"] == "WARN"
    assert env["UCX_TLS"] == "self,sm" and env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "UNRELATED_VARIABLE" not in env and "PATH" not in env
    assert summary["clock_error_bound_ns"] >= 0


@needs_minipt
def test_revision_is_this_trees(summary):
    rev = summary["git_revision"]
    assert rev == summary["provenance"]["git_revision"]
    git = shutil.which("git")
    top = subprocess.run([git, "-C", mr.REPO_ROOT, "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True) if git else None
    if top is None or top.returncode != 0 or \
            os.path.realpath(top.stdout.strip()) != os.path.realpath(mr.REPO_ROOT):
        pytest.skip("the source tree is not its own git work tree")
    head = subprocess.run([git, "-C", mr.REPO_ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # The binary was built from this tree at some commit: its hash is a prefix of HEAD's
    # unless commits were made since the last build.
    assert head.startswith(rev.split("-")[0]), ("binary built at %s, HEAD is %s: rebuild (the "
                                                "revision is taken at every build)" % (rev, head))


def _revision_of(source_dir, tmp_path):
    out = tmp_path / "rev.hpp"
    cmake = shutil.which("cmake")
    subprocess.run([cmake, "-DSOURCE_DIR=%s" % source_dir, "-DOUTPUT=%s" % out,
                    "-DGIT_EXECUTABLE=%s" % shutil.which("git"), "-P",
                    os.path.join(mr.REPO_ROOT, "cmake", "revision.cmake")], check=True)
    line = [l for l in out.read_text().splitlines() if "MINIPT_SOURCE_REVISION" in l][0]
    return line.split('"', 1)[1].rsplit('"', 1)[0]


@pytest.mark.skipif(not (shutil.which("git") and shutil.which("cmake")), reason="needs git and cmake")
def test_tree_inside_another_repository_reports_no_revision(tmp_path):
    outer = tmp_path / "outer"
    inner = outer / "vendor" / "minipt"
    inner.mkdir(parents=True)
    (inner / "CMakeLists.txt").write_text("# stand-in\n")
    git = ["git", "-C", str(outer), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "outer"], check=True)
    outer_head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    rev = _revision_of(inner, tmp_path)
    assert rev.startswith("unknown (") and outer_head[:7] not in rev, rev
    # The outer repository's own top does report its revision.
    assert outer_head.startswith(_revision_of(outer, tmp_path))
