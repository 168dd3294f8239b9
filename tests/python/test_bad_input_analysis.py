"""Bad input for the analysis command line (minipt-analyze, run as
`python -m minipt_analysis`): every command given each kind of bad file (missing, a
directory, empty, text, truncated, a foreign HDF5 file, a newer schema, no /events), and
bad arguments. Each case: exit code 2 within TIME_LIMIT_S, one message on stderr naming
the file or the option, no traceback, and no output file left."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import test_analysis as ta

TIME_LIMIT_S = 60

BAD_FILES = {
    "missing": "no such file",
    "directory": "is a directory",
    "empty": "not a readable HDF5 file",
    "text": "not a readable HDF5 file",
    "truncated": "not a readable HDF5 file",
    "foreign": "not a minipt timeline",
    "future": "schema_version 99 is not supported",
    "no_events": "missing group /events",
}

# Commands reading one run, and the output they would write (relative to the output dir).
COMMANDS = {
    "summary": ([], None),
    "utilization": (["-o", "{out}/u.png"], "u.png"),
    "timeline": (["-o", "{out}/t.png"], "t.png"),
    "perfetto": (["-o", "{out}/trace.json"], "trace.json"),
    "otf2": (["-o", "{out}/otf2"], "otf2"),
    "bandwidth": ([], None),
    "validate": ([], None),
    "compare": (None, None),  # the good run first, then the bad one
}


def make_files(tmp_path):
    """{name: path}: the good four-rank run and one file of each bad kind."""
    good = ta.write_run(tmp_path / "good.h5", world=4, events=ta.four_rank_events(),
                        steps=ta.four_rank_steps(), warmup_steps=1)
    paths = {"good": str(good), "missing": str(tmp_path / "missing.h5")}
    os.mkdir(tmp_path / "directory.h5")
    paths["directory"] = str(tmp_path / "directory.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    paths["empty"] = str(tmp_path / "empty.h5")
    (tmp_path / "text.h5").write_text("hello\n")
    paths["text"] = str(tmp_path / "text.h5")
    data = open(good, "rb").read()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    paths["truncated"] = str(tmp_path / "truncated.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.create_dataset("x", data=np.arange(3))
    paths["foreign"] = str(tmp_path / "foreign.h5")
    with h5py.File(tmp_path / "future.h5", "w") as f:
        f.attrs["schema_version"] = 99
    paths["future"] = str(tmp_path / "future.h5")
    with h5py.File(tmp_path / "no_events.h5", "w") as f:
        f.attrs["schema_version"] = 1
    paths["no_events"] = str(tmp_path / "no_events.h5")
    return paths


FILE_CASES = [("%s-%s" % (command, bad), command, bad) for command in COMMANDS
              for bad in BAD_FILES]

# (id, arguments with {good} and {out}, substrings of the message, output that must not exist)
ARG_CASES = [
    ("no_command", [], ["COMMAND"], None),
    ("unknown_command", ["frobnicate", "{good}"], ["frobnicate"], None),
    ("summary_no_runs", ["summary"], ["RUN.h5"], None),
    ("summary_bad_format", ["summary", "{good}", "--format", "xml"], ["--format", "xml"], None),
    ("compare_bad_format", ["compare", "{good}", "{good}", "--format", "json"], ["--format"], None),
    ("bandwidth_bad_format", ["bandwidth", "{good}", "--format", "tsv"], ["--format"], None),
    ("utilization_without_output", ["utilization", "{good}"], ["-o/--output"], None),
    ("timeline_without_output", ["timeline", "{good}"], ["-o/--output"], None),
    ("perfetto_without_output", ["perfetto", "{good}"], ["-o/--output"], None),
    ("otf2_without_output", ["otf2", "{good}"], ["-o/--output"], None),
    ("timeline_ranks_not_numbers", ["timeline", "{good}", "--ranks", "x", "-o", "{out}/t.png"],
     ["--ranks", "'x'"], "t.png"),
    ("timeline_ranks_empty", ["timeline", "{good}", "--ranks", ",", "-o", "{out}/t.png"],
     ["--ranks", "at least one rank"], "t.png"),
    ("timeline_rank_out_of_range", ["timeline", "{good}", "--ranks", "9", "-o", "{out}/t.png"],
     ["good.h5", "[9]", "world_size 4"], "t.png"),
    ("timeline_step_not_integer", ["timeline", "{good}", "--step", "one", "-o", "{out}/t.png"],
     ["--step", "'one'"], "t.png"),
    ("timeline_no_such_step", ["timeline", "{good}", "--step", "99", "-o", "{out}/t.png"],
     ["good.h5", "no step 99"], "t.png"),
    ("timeline_three_runs", ["timeline", "{good}", "{good}", "{good}", "-o", "{out}/t.png"],
     ["got 3 files"], "t.png"),
    ("utilization_unknown_format", ["utilization", "{good}", "-o", "{out}/u.txt"],
     ["u.txt", "cannot write figure", "not supported"], "u.txt"),
    ("utilization_missing_directory", ["utilization", "{good}", "-o", "{out}/no/u.png"],
     ["{out}/no/u.png", "cannot write figure"], "no"),
    ("timeline_missing_directory", ["timeline", "{good}", "-o", "{out}/no/t.png"],
     ["{out}/no/t.png"], "no"),
    ("perfetto_missing_directory", ["perfetto", "{good}", "-o", "{out}/no/t.json"],
     ["{out}/no/t.json", "cannot write trace"], "no"),
    ("otf2_missing_parent", ["otf2", "{good}", "-o", "{out}/no/o"],
     ["-o {out}/no/o", "does not exist"], "no"),
    ("report_missing_directory", ["report", "{out}/nowhere"], ["{out}/nowhere", "not a directory"],
     "nowhere"),
    ("report_of_a_file", ["report", "{good}"], ["good.h5", "not a directory"], None),
]


def run_analyze(args, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        "analysis") + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, "-m", "minipt_analysis", *args], capture_output=True,
                          text=True, env=env, timeout=TIME_LIMIT_S, cwd=str(tmp_path))


def check_error(proc, must):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if ": error: " in l]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("minipt-analyze"), proc.stderr
    for text in must:
        assert text in errors[0], (text, proc.stderr)


@pytest.mark.parametrize("command,bad", [(c, b) for _, c, b in FILE_CASES],
                         ids=["analysis-" + i for i, _, _ in FILE_CASES])
def test_bad_file(command, bad, tmp_path):
    paths = make_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    extra, output = COMMANDS[command]
    if command == "compare":
        args = ["compare", paths["good"], paths[bad]]
    else:
        args = [command, paths[bad]] + [a.replace("{out}", str(out)) for a in extra]
    proc = run_analyze(args, tmp_path)
    check_error(proc, [os.path.basename(paths[bad]), BAD_FILES[bad]])
    assert os.listdir(out) == [], "bad input left %s" % os.listdir(out)
    if output is not None:
        assert not (out / output).exists()


@pytest.mark.parametrize("args,must,output", [c[1:] for c in ARG_CASES],
                         ids=["analysis-" + c[0] for c in ARG_CASES])
def test_bad_arguments(args, must, output, tmp_path):
    paths = make_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    fill = lambda a: a.replace("{good}", paths["good"]).replace("{out}", str(out))
    proc = run_analyze([fill(a) for a in args], tmp_path)
    check_error(proc, [fill(m) for m in must])
    assert os.listdir(out) == [], "bad input left %s" % os.listdir(out)


# ---- damaged timelines (issue 31, item 8): the hardened reader --------------------------
# Each damage is applied to the good four-rank file; every command reading one run must
# exit 2 naming the file and what is wrong, with no traceback and no output left. Run in
# process (minipt_analysis.cli.main): an exception escaping it fails the test as a traceback.

def _set_attr(key, value):
    return lambda f: f.attrs.__setitem__(key, value)


def _replace_column(name, dtype, extra_shape=()):
    """The column replaced by one as long, of `dtype` (and shape (n, *extra_shape))."""
    def damage(f):
        n = f[name].shape[0]
        del f[name]
        f.create_dataset(name, data=np.zeros((n, *extra_shape), dtype=dtype))
    return damage


def _set_value(name, index, value):
    return lambda f: f[name].__setitem__(index, value)


def _shorten(name, length):
    return lambda f: f[name].resize((length,))


DAMAGES = {
    # attribute shapes and types
    "world_size_array": (_set_attr("world_size", np.array([4, 4], np.int32)),
                         "world_size = an array of shape (2,) is not an integer"),
    "warmup_steps_array": (_set_attr("warmup_steps", np.arange(3, dtype=np.int32)),
                           "warmup_steps = an array of shape (3,) is not an integer"),
    "backend_array": (_set_attr("backend", np.array(["emulated", "cuda"],
                                                    dtype=h5py.string_dtype())),
                      "backend = an array of shape (2,) is not a string"),
    "peak_tflops_text": (_set_attr("peak_tflops", "fast"), "peak_tflops = 'fast' is not a number"),
    "run_id_number": (_set_attr("run_id", np.int64(7)), "run_id = 7 is not a string"),
    "schema_version_text": (_set_attr("schema_version", "four"),
                            "schema_version 'four' is not an integer"),
    "schema_version_zero": (_set_attr("schema_version", np.int32(0)),
                            "schema_version 0 is not supported"),
    "schema_version_array": (_set_attr("schema_version", np.array([1, 2], np.int32)),
                             "is not an integer"),
    "summary_attr_array": (lambda f: f.require_group("summary").attrs.__setitem__("tokens_per_s",
                                                                    np.arange(4.0)),
                           "/summary attribute tokens_per_s = an array of shape (4,)"),
    "kind_names_numbers": (lambda f: f["events"].attrs.__setitem__("kind_names", np.arange(3)),
                           "kind_names = an array of shape (3,) is not a list of names"),
    # world_size against /steps
    "world_size_2e9": (_set_attr("world_size", np.int64(2_000_000_000)),
                       "world_size = 2000000000 but /steps has rows for 4 ranks (0..3)"),
    "world_size_zero": (_set_attr("world_size", np.int32(0)), "world_size = 0, expected >= 1"),
    "world_size_float": (_set_attr("world_size", 2e9), "world_size = 2000000000.0 is not an "
                                                       "integer"),
    # column dtypes and lengths
    "rank_float": (_replace_column("events/rank", np.float64),
                   "/events/rank has type float64, expected integers"),
    "tokens_text": (_replace_column("steps/tokens", "S1"),
                    "/steps/tokens has type |S1, expected integers"),
    "loss_text": (_replace_column("steps/loss", "S1"),
                  "/steps/loss has type |S1, expected numbers"),
    "flops_short": (_shorten("events/flops", 3), "/events/flops has shape (3,), expected (28,)"),
    "steps_2d": (_replace_column("steps/compute_ns", np.int64, (2,)),
                 "/steps/compute_ns has shape (8, 2)"),
    # ranges
    "event_rank_out_of_range": (_set_value("events/rank", 0, 7),
                                "/events/rank: 1 rank outside the allowed range (first: row 0,"
                                " 7; allowed in 0..3)"),
    "unit_out_of_range": (_set_value("events/unit", 1, -5), "/events/unit: 1 unit outside"),
    "kind_out_of_range": (_set_value("events/kind", 2, 99), "/events/kind: 1 kind code outside"),
    "lane_out_of_range": (_set_value("events/lane", 2, 9), "/events/lane: 1 lane code outside"),
    "negative_step": (_set_value("events/step", 0, -1), "/events/step: 1 step outside"),
    "negative_bytes": (_set_value("events/bytes", 0, -1), "/events/bytes: 1 negative count"),
    "steps_rank_out_of_range": (_set_value("steps/rank", 0, 9),
                                "world_size = 4 but /steps has rows for 5 ranks"),
    "workload_rank_out_of_range": (_set_value("workload/rank", 0, 4),
                                   "/workload/rank: 1 rank outside"),
    # intervals
    "event_ends_before_start": (_set_value("events/t_end_ns", 0, -5),
                                "/events: 1 row end before they start (first: row 0"),
    "step_ends_before_start": (_set_value("steps/t_end_ns", 0, -5),
                               "/steps: 1 row end before they start"),
}

# Commands that read the damaged part, and their outputs.
DAMAGE_COMMANDS = {
    "summary": [], "utilization": ["-o", "{out}/u.png"], "timeline": ["-o", "{out}/t.png"],
    "perfetto": ["-o", "{out}/t.json"], "otf2": ["-o", "{out}/o"], "validate": [],
    "bandwidth": [],
}
# Damages to columns only some commands read.
ONLY_COMMANDS = {"negative_bytes": ["perfetto", "otf2", "bandwidth"],
                 "workload_rank_out_of_range": ["validate"]}


def _damaged(tmp_path, damage):
    path = ta.write_run(tmp_path / "damaged.h5", world=4, events=ta.four_rank_events(),
                        steps=ta.four_rank_steps(), warmup_steps=1,
                        workload_rows=[(0, 0, 0, 0, 100)])
    with h5py.File(path, "r+") as f:
        damage(f)
    return str(path)


@pytest.mark.parametrize("damage", list(DAMAGES), ids=["analysis-damaged-" + d for d in DAMAGES])
def test_damaged_timeline_is_exit_2_naming_file_and_problem(damage, tmp_path, capsys):
    from minipt_analysis.cli import main

    change, message = DAMAGES[damage]
    path = _damaged(tmp_path, change)
    out = tmp_path / "out"
    out.mkdir()
    commands = ONLY_COMMANDS.get(damage, [c for c in DAMAGE_COMMANDS if c != "bandwidth"])
    for command in commands:
        args = [command, path] + [a.replace("{out}", str(out)) for a in DAMAGE_COMMANDS[command]]
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        assert err.startswith(f"minipt-analyze: error: {path}: "), (command, err)
        assert message in err, (command, message, err)
        assert len(err.strip().splitlines()) == 1, err
        assert os.listdir(out) == [], (command, os.listdir(out))


def test_world_size_2e9_does_not_allocate(tmp_path):
    """A 1-rank file claiming world_size 2e9: summary, utilization and timeline answer
    exit 2 at once under a 1 GiB address-space limit (was an attempt at 238 GiB)."""
    path = ta.write_run(tmp_path / "one.h5", world=1,
                        events=[dict(rank=0, step=0, kind="forward", t0=0, t1=800)],
                        steps=[(0, 0, 100, 0, 1000)], warmup_steps=0)
    with h5py.File(path, "r+") as f:
        f.attrs["world_size"] = np.int64(2_000_000_000)
    limit = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, "
             "2 << 30)); sys.argv = ['minipt-analyze'] + sys.argv[1:]; "
             "runpy.run_module('minipt_analysis', run_name='__main__')")
    for args in (["summary", str(path)], ["utilization", str(path), "-o", "u.png"],
                 ["timeline", str(path), "-o", "t.png"]):
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.path.join(
            ta.__file__.rsplit("/tests/", 1)[0], "analysis"))
        proc = subprocess.run([sys.executable, "-c", limit, *args], capture_output=True,
                              text=True, env=env, timeout=TIME_LIMIT_S, cwd=str(tmp_path))
        check_error(proc, [str(path), "world_size = 2000000000 but /steps has rows for 1 "
                                      "ranks (0..0)"])
        assert not os.path.exists(tmp_path / "u.png") and not os.path.exists(tmp_path / "t.png")


# ---- outputs (issue 31, item 7): a temp beside the target, renamed when complete ---------

@pytest.fixture
def full_tmpfs():
    """A 256 KiB tmpfs filled but for a few KiB: a full disk for any figure, trace or
    report. Skips where mount is not allowed."""
    import tempfile

    d = tempfile.mkdtemp()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", d], check=False)
    os.rmdir(d)


def _fill(directory, leave=2048):
    """Fills the file system of `directory` but for about `leave` bytes."""
    st = os.statvfs(directory)
    with open(os.path.join(directory, "filler"), "wb") as f:
        f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))


def _temps(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


@pytest.mark.parametrize("command,name", [("perfetto", "t.json"), ("utilization", "u.png"),
                                          ("timeline", "t.png"), ("report", "report.html")],
                         ids=["analysis-full-disk-" + c for c in ("perfetto", "utilization",
                                                                  "timeline", "report")])
def test_full_disk_keeps_the_existing_output(command, name, full_tmpfs, tmp_path, capsys):
    from minipt_analysis.cli import main

    good = make_files(tmp_path)["good"]
    final = os.path.join(full_tmpfs, name)
    with open(final, "w") as f:
        f.write("good")
    _fill(full_tmpfs)
    if command == "report":
        os.mkdir(tmp_path / "runs")
        os.rename(good, tmp_path / "runs" / "good.h5")
        args = ["report", str(tmp_path / "runs"), "-o", final]
    else:
        args = [command, good, "-o", final]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"minipt-analyze: error: {final}: cannot write "), err
    assert "No space left on device" in err and "Traceback" not in err, err
    assert open(final).read() == "good"
    assert _temps(full_tmpfs) == []


@pytest.mark.parametrize("command", ["perfetto", "otf2"],
                         ids=["analysis-full-disk-per-rank", "analysis-full-disk-otf2"])
def test_full_disk_directory_outputs_leave_nothing(command, full_tmpfs, tmp_path, capfd):
    """A full disk under `perfetto --per-rank` or `otf2` (whose C library prints its own
    errors): exit 2, one line naming the output and the cause, nothing left."""
    from minipt_analysis.cli import main

    if command == "otf2":
        pytest.importorskip("otf2")
    good = make_files(tmp_path)["good"]
    _fill(full_tmpfs, leave=0)
    target = os.path.join(full_tmpfs, "out")
    extra = ["--per-rank"] if command == "perfetto" else []
    code = main([command, good, *extra, "-o", target])
    err = capfd.readouterr().err
    assert code == 2, err
    expected = (f"{target}/rank0.trace.json: cannot write trace" if command == "perfetto"
                else f"-o {target}: cannot write the OTF2 archive")
    assert err == f"minipt-analyze: error: {expected} (No space left on device)\n", err
    assert sorted(os.listdir(full_tmpfs)) == ["filler"]


@pytest.mark.parametrize("command,name", [("perfetto", "t.json"), ("utilization", "u.png"),
                                          ("timeline", "t.png")],
                         ids=["analysis-symlink-" + c for c in ("perfetto", "utilization",
                                                                "timeline")])
def test_link_at_the_output_is_replaced_not_followed(command, name, tmp_path, capsys):
    from minipt_analysis.cli import main

    good = make_files(tmp_path)["good"]
    target = tmp_path / "precious"
    target.write_text("precious")
    final = tmp_path / name
    final.symlink_to(target)
    assert main([command, good, "-o", str(final)]) == 0, capsys.readouterr().err
    assert target.read_text() == "precious"
    assert not final.is_symlink() and final.stat().st_size > 0
    assert _temps(tmp_path) == []


def test_temp_name_taken_by_a_link_is_not_followed(tmp_path, monkeypatch):
    """The temp is opened O_EXCL | O_NOFOLLOW: a link planted at the temp's name is never
    written through; the writer takes another name."""
    from minipt_analysis import runfile

    target = tmp_path / "precious"
    target.write_text("precious")
    names = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(runfile.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".out.txt.aaaaaaaaaaaa.tmp").symlink_to(target)
    with runfile.file_written_whole(str(tmp_path / "out.txt")) as f:
        f.write("new")
    assert target.read_text() == "precious"
    assert (tmp_path / "out.txt").read_text() == "new"
    assert os.path.islink(tmp_path / ".out.txt.aaaaaaaaaaaa.tmp")


def test_perfetto_input_bad_midway_leaves_no_partial_trace(tmp_path, capsys):
    """The kind column is read (and found out of range) after the trace's header and
    metadata are written: no partial JSON, an older trace intact, no temp left."""
    from minipt_analysis.cli import main

    path = _damaged(tmp_path, _set_value("events/kind", 5, 99))
    final = tmp_path / "t.json"
    final.write_text("older trace")
    assert main(["perfetto", path, "-o", str(final)]) == 2
    err = capsys.readouterr().err
    assert "/events/kind: 1 kind code outside" in err, err
    assert final.read_text() == "older trace"
    assert _temps(tmp_path) == []


def test_write_error_names_the_file(tmp_path, monkeypatch, capsys):
    """An error of the final rename (or any write) is exit 2 naming the output, and the
    temp is removed (in process: os.replace fails with EACCES)."""
    import errno

    from minipt_analysis.cli import main
    from minipt_analysis import runfile

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dst)

    good = make_files(tmp_path)["good"]
    monkeypatch.setattr(runfile.os, "replace", refuse)
    final = tmp_path / "t.json"
    assert main(["perfetto", good, "-o", str(final)]) == 2
    err = capsys.readouterr().err
    assert err == f"minipt-analyze: error: {final}: cannot write trace (Permission denied)\n"
    assert not final.exists() and _temps(tmp_path) == []


# ---- suite JSON of the wrong types (issue 31, item 8) ------------------------------------

def _suite_doc():
    mode = {"tokens_per_s_per_rank": {"median": 10.0, "min": 9.0, "max": 11.0, "spread": 0.1},
            "stable": True, "utilization": {"median": 0.5}}
    return {"problem": "small", "ranks": 4, "nodes": 1, "repetitions": 3, "config": "c.toml",
            "verification": "PASSED", "stable": True, "loss_rtol": 1e-3,
            "parameter_norm_rtol": 1e-3, "spread_limit": 0.05,
            "figure_of_merit": {"value": 10.0, "mode": "odc", "odc_over_fsdp": 1.1,
                                "utilization_fsdp": 0.4, "utilization_odc": 0.5},
            "modes": {"fsdp": dict(mode), "odc": dict(mode)}}


SUITE_DAMAGES = [
    ("ranks_text", lambda d: d.update(ranks="four"), "field ranks = \"four\" is not an integer"),
    ("problem_missing", lambda d: d.pop("problem"), "field problem is missing"),
    ("fom_text", lambda d: d["figure_of_merit"].update(value="fast"),
     "field figure_of_merit.value = \"fast\" is not a number"),
    ("stable_number", lambda d: d.update(stable=1), "field stable = 1 is not true or false"),
    ("mode_not_object", lambda d: d["modes"].update(odc=[1, 2]),
     "field modes.odc.tokens_per_s_per_rank.median is missing"),
    ("median_null", lambda d: d["modes"]["fsdp"]["tokens_per_s_per_rank"].update(median=None),
     "field modes.fsdp.tokens_per_s_per_rank.median = null is not a number"),
    ("not_object", lambda d: d.clear() or d.update(x=1), "field problem is missing"),
]


@pytest.mark.parametrize("change,message", [c[1:] for c in SUITE_DAMAGES],
                         ids=["analysis-suite-" + c[0] for c in SUITE_DAMAGES])
def test_suite_json_of_wrong_types_is_exit_2(change, message, tmp_path, capsys):
    import json

    from minipt_analysis.cli import main

    doc = _suite_doc()
    change(doc)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.json").write_text(json.dumps(doc))
    code = main(["report", str(suite)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == f"minipt-analyze: error: {suite}/suite.json: {message}\n"
    assert os.listdir(suite) == ["suite.json"]


def test_suite_json_of_the_right_types_reports(tmp_path, capsys):
    import json

    from minipt_analysis.cli import main

    (tmp_path / "suite.json").write_text(json.dumps(_suite_doc()))
    assert main(["report", str(tmp_path)]) == 0, capsys.readouterr().err
    assert "Figure of merit: 10.0" in (tmp_path / "report.html").read_text()


# ---- validate (issue 31, item 10) --------------------------------------------------------

def test_validate_fails_on_nan_loss(tmp_path, capsys):
    from minipt_analysis.cli import main

    path = _damaged(tmp_path, _set_value("steps/loss", 5, np.nan))
    assert main(["validate", path]) == 1
    out = capsys.readouterr().out
    assert "/steps loss is not finite in 1 rows (first: step 1 rank 1: nan)" in out, out


def _run_json(path, **changes):
    """The summary JSON `minipt run` writes beside NAME.h5 (run.json = true), from the
    .h5's own attributes and /summary, with `changes` applied."""
    import json

    with h5py.File(path, "r") as f:
        doc = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item")
                   else v) for k, v in f.attrs.items()}
        summary = {k: v.item() for k, v in f["summary"].attrs.items()} if "summary" in f else {}
    doc["summary"], doc["h5"] = summary, str(path)
    for key, value in changes.items():
        if key.startswith("summary_"):
            doc["summary"][key[len("summary_"):]] = value
        else:
            doc[key] = value
    with open(os.path.splitext(str(path))[0] + ".json", "w") as f:
        json.dump(doc, f)


@pytest.mark.parametrize("changes,message", [
    ({}, None),
    ({"created_utc": "2026-01-01T00:00:01Z"},
     "created_utc '2026-01-01T00:00:01Z' vs '2026-01-01T00:00:00Z' in the .h5"),
    ({"run_id": "b"}, "run_id 'b' vs 'a' in the .h5"),
    ({"summary_tokens_per_s": 1.5}, "summary tokens_per_s 1.5 vs "),
    ({"config_toml": "[model]\n"}, "config_toml differs"),
], ids=["analysis-run-json-same", "analysis-run-json-created", "analysis-run-json-run-id",
        "analysis-run-json-figures", "analysis-run-json-config"])
def test_validate_detects_h5_and_json_of_different_runs(changes, message, tmp_path, capsys):
    """NAME.h5 and NAME.json beside it must come from one run: the run identity (run_id,
    where the writer sets it), the provenance both carry and the figures must agree."""
    from minipt_analysis.cli import main

    path = ta.write_run(tmp_path / "r.h5", world=4, events=ta.four_rank_events(),
                        steps=ta.four_rank_steps(), warmup_steps=1)
    with h5py.File(path, "r+") as f:
        f.attrs["run_id"] = "a"
        f.create_group("summary").attrs["tokens_per_s"] = 2.0
    _run_json(path, **changes)
    main(["validate", str(path)])
    out = capsys.readouterr().out
    mismatch = [l for l in out.splitlines() if "come from different runs" in l]
    if message is None:
        assert mismatch == [], out
    else:
        assert len(mismatch) == 1 and message in mismatch[0], out
        assert f"{tmp_path}/r.json and {path} come from different runs" in mismatch[0]


def test_validate_detects_a_json_of_another_minipt_run(tmp_path):
    """Two real runs with run.json = true: each pair validates; r2.json beside r1.h5 (as
    concurrent runs with one run.out can leave) is reported."""
    import shutil

    import minipt_runner as mr

    if mr.minipt_bin() is None:
        pytest.skip("MINIPT_BIN unset or missing")
    for name in ("r1", "r2"):
        mr.run_minipt(["run", "--config", "inputs/models/tiny.toml", "--set", "run.steps=2",
                       "--set", "run.warmup_steps=1", "--set", "workload.minibatch_size=4",
                       "--set", "workload.mean=64", "--set", "workload.max=128", "--set",
                       "run.json=true", "--out", str(tmp_path / f"{name}.h5"), "--quiet"],
                      ranks=2, check=True, cwd=mr.REPO_ROOT)
    proc = run_analyze(["validate", str(tmp_path / "r1.h5")], tmp_path)
    assert proc.returncode == 0, proc.stdout
    shutil.copy(tmp_path / "r2.json", tmp_path / "r1.json")
    proc = run_analyze(["validate", str(tmp_path / "r1.h5")], tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert f"{tmp_path}/r1.json and {tmp_path}/r1.h5 come from different runs" in proc.stdout
