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
    "stragglers": ([], None),
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
    ("stragglers_bad_format", ["stragglers", "{good}", "--format", "tsv"], ["--format"], None),
    ("stragglers_top_zero", ["stragglers", "{good}", "--top", "0"], ["--top 0", "positive"],
     None),
    ("stragglers_top_not_a_number", ["stragglers", "{good}", "--top", "all"], ["--top", "'all'"],
     None),
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
