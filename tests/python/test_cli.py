"""Command-line behaviour of the minipt executable.

Bad input (configuration, command line, files) must end the job with exit code 2 and
one clear message on stderr that names the key (and the allowed values where there is a
closed set), with no abort or traceback noise, no hang under mpirun, and no output file
left behind. The good paths checked here are --help (every key with its default),
--version and `plan`.

Needs MINIPT_BIN=/path/to/minipt; MINIPT_MPIEXEC overrides the launcher (default mpirun).
"""

import json
import os
import re
import tomllib

import h5py
import pytest

import minipt_runner as mr
from bad_input import Case, check_bad_input

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

BAD_TOML = "[model\nlayers = 2\n"
BAD_HISTOGRAM = "length,count\n9000,3\nabc,4\n"  # 9000: within demo.toml's [8192, 65536]

DEMO = mr.DEMO_CONFIG


def built_with_cuda():
    """Why the case cannot run: the binary has the cuda backend. `minipt --version` lists
    the backends built in; an older binary that does not is searched for the CUDA
    runtime's symbol names instead (not tried on a CUDA build: none on the CPU machine)."""
    version = mr.run_minipt(["--version"], check=True).stdout
    if "backends:" in version:
        backends = version.split("backends:")[1].split()
        return "this minipt has the cuda backend" if "cuda" in backends else None
    with open(mr.minipt_bin(), "rb") as f:
        image = f.read()
    if b"cudaGetDeviceCount" in image or b"libcudart" in image:
        return "this minipt has the cuda backend"
    return None

RUN = ["run", "--config", DEMO]
# Keeps a run that wrongly passed validation short (it would then fail the rc check).
SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=2"]

PLAN = ["plan", "--config", DEMO, "--ranks", "2"]
ONE = dict(ranks=None, add_out=False)  # minipt alone, no output option

CASES = [
    Case("missing_config", ["run", "--config", "{in}/nope.toml"], ["nope.toml", "cannot read"]),
    Case("missing_config_1proc", ["run", "--config", "{in}/nope.toml"], ["nope.toml", "cannot read"],
         ranks=None),
    Case("bad_toml_syntax", ["run", "--config", "{in}/bad.toml"], ["bad.toml:1", "]"],
         files={"bad.toml": BAD_TOML}),
    Case("unknown_key_set", RUN + ["--set", "model.layrs=3"],
         ["model.layrs", "unknown key", "did you mean model.layers"]),
    Case("unknown_key_in_file", ["run", "--config", "{in}/typo.toml"],
         ["model.layres", "did you mean model.layers"], files={"typo.toml": "[model]\nlayres = 2\n"}),
    Case("ranks_per_node_not_dividing", RUN + SHORT + ["--set", "comm.ranks_per_node=3"],
         ["comm.ranks_per_node", "does not divide the world size 2"]),
    Case("nan_float", RUN + SHORT + ["--set", "optim.lr=nan"], ["optim.lr", "nan"]),
    Case("inf_float", RUN + SHORT + ["--set", "workload.mean=inf"], ["workload.mean", "inf"]),
    Case("neg_inf_float", RUN + SHORT + ["--set", "optim.clip_norm=-inf"], ["optim.clip_norm"]),
    Case("nan_float_in_file", ["run", "--config", DEMO, "--config", "{in}/nan.toml"] + SHORT,
         ["optim.lr", "nan"], files={"nan.toml": "[optim]\nlr = nan\n"}),
    Case("dump_is_out", RUN + SHORT + ["--set", "run.dump={out}/a.h5", "--out", "{out}/a.h5"],
         ["run.dump", "run.out"], add_out=False),
    Case("empty_out", RUN + SHORT + ["--out", ""], ["--out", "empty"], add_out=False),
    Case("equal_counts_not_divisible", RUN + SHORT + ["--set", "workload.minibatch_size=3",
                                                      "--set", "balance.equal_counts=true"],
         ["balance.equal_counts", "3 for 2 ranks", "workload.minibatch_size"]),
    Case("bimodal_long_mean_out_of_range", RUN + SHORT + ["--set", "workload.distribution=\"bimodal\"",
                                                          "--set", "workload.long_mean=1e9"],
         ["workload.long_mean", "workload.max"]),
    Case("string_for_int", RUN + ["--set", 'model.layers="four"'], ["model.layers", "integer", "four"]),
    Case("int_for_bool", RUN + ["--set", "run.json=1"], ["run.json", "true or false"]),
    Case("negative_layers", RUN + ["--set", "model.layers=-1"], ["model.layers", "-1", "[1, 1024]"]),
    Case("zero_minibatch", RUN + ["--set", "workload.minibatch_size=0"],
         ["workload.minibatch_size", "out of range"]),
    Case("heads_not_dividing_hidden", RUN + ["--set", "model.heads=7"],
         ["model.heads", "7", "model.hidden"]),
    Case("kv_heads_not_dividing_heads", RUN + ["--set", "model.kv_heads=5"],
         ["model.kv_heads", "5", "model.heads"]),
    Case("token_budget_below_max", RUN + ["--set", "balance.token_budget=1000"],
         ["balance.token_budget", "1000", "workload.max", ">= workload.max"]),
    Case("constant_length_over_budget",
         RUN + ["--set", 'workload.distribution="constant"', "--set", "workload.mean=100000",
                "--set", "workload.max=100000"],
         ["balance.token_budget", "100000"]),
    Case("min_above_max", RUN + ["--set", "workload.min=70000"], ["workload.min", "workload.max"]),
    Case("mini_with_fsdp", RUN + ["--set", 'balance.scheme="mini"'],
         ["balance.scheme", "mini", "odc", "none|micro"]),
    Case("unknown_mode", RUN + ["--set", 'run.mode="ddp"'], ["run.mode", "ddp", "fsdp|odc"]),
    Case("unknown_distribution", RUN + ["--set", "workload.distribution=gaussian"],
         ["workload.distribution", "gaussian", "constant|uniform|lognormal|pareto|bimodal|histogram"]),
    Case("unknown_tail", RUN + ["--set", "workload.tail=truncate"],
         ["workload.tail", "truncate", "clamp|resample|drop"]),
    # resample with sigma 10: almost no draw lands in [8192, 65536], the draw loop is bounded.
    Case("tail_resample_never_fills", RUN + SHORT + ["--set", "workload.tail=resample",
                                                     "--set", "workload.sigma=10",
                                                     "--set", "workload.mean=65536"],
         ["workload.tail", "fewer than 1 in 64 draws", "[8192, 65536]", "clamp|resample|drop"]),
    Case("tail_resample_never_fills_plan", PLAN + ["--set", "workload.tail=resample",
                                                   "--set", "workload.sigma=10",
                                                   "--set", "workload.mean=65536"],
         ["workload.tail", "fewer than 1 in 64 draws", "clamp|resample|drop"], **ONE),
    Case("unknown_backend", RUN + ["--set", "compute.backend=tpu"],
         ["compute.backend", "emulated|kokkos|cuda"]),
    Case("unwritable_out", RUN + SHORT + ["--out", "/nonexistent/dir/x.h5"],
         ["run.out", "/nonexistent/dir/x.h5"], add_out=False),
    Case("out_not_h5", RUN + SHORT + ["--out", "{out}/x.txt"], ["run.out", "x.txt", ".h5"],
         add_out=False),
    Case("out_is_directory", RUN + SHORT + ["--out", "{out}/d.h5"], ["run.out", "d.h5", "directory"],
         add_out=False, out_dirs=["d.h5"]),
    Case("json_is_directory", RUN + SHORT + ["--out", "{out}/r.h5"],
         ["run.json", "r.json", "directory"], add_out=False, out_dirs=["r.json"]),
    Case("histogram_without_file", RUN + ["--set", "workload.distribution=histogram"],
         ["workload.histogram_file", "histogram"]),
    Case("histogram_file_missing",
         RUN + ["--set", "workload.distribution=histogram",
                "--set", 'workload.histogram_file="{in}/missing.csv"'],
         ["workload.histogram_file", "missing.csv"]),
    Case("histogram_malformed",
         RUN + SHORT + ["--set", "workload.distribution=histogram",
                        "--set", 'workload.histogram_file="{in}/lengths.csv"'],
         ["workload.histogram_file", "lengths.csv:3", "abc"], files={"lengths.csv": BAD_HISTOGRAM}),
    # With tail = clamp a row outside the bounds is an error (resample/drop skip it).
    Case("histogram_length_above_max",
         RUN + SHORT + ["--set", "workload.distribution=histogram", "--set", "workload.tail=clamp",
                        "--set", 'workload.histogram_file="{in}/long.csv"'],
         ["workload.histogram_file", "long.csv:3", "70000", "[workload.min, workload.max]",
          "[8192, 65536]"], files={"long.csv": "length,count\n9000,3\n70000,1\n"}),
    Case("unknown_option", RUN + ["--frobnicate"], ["--frobnicate", "unknown option"]),
    Case("unknown_command", ["frob", "--config", DEMO], ["frob", "run|plan"], add_out=False),
    Case("unknown_command_1proc", ["frob"], ["frob", "run|plan"], ranks=None, add_out=False),
    Case("set_without_equals", RUN + ["--set", "model.layers"],
         ["--set", "model.layers", "key=value"]),
    Case("set_without_equals_1proc", RUN + ["--set", "model.layers"], ["--set", "key=value"],
         ranks=None),
    Case("option_without_value", ["run", "--config"], ["--config", "needs a value"], add_out=False),
    Case("no_config", ["run"], ["--config"]),
    Case("no_command_1proc", [], ["no command"], ranks=None, add_out=False),
    Case("scale_with_kokkos", RUN + ["--set", "compute.backend=kokkos"],
         ["model.scale", "kokkos", "1.0"]),
    Case("backend_not_built", RUN + ["--set", "compute.backend=cuda", "--set", "model.scale=1.0"],
         ["compute.backend", "cuda", "not available in this build", "allowed: emulated"],
         skip_if=built_with_cuda),
    Case("attention_unknown", RUN + ["--set", "compute.attention=flash3"],
         ["compute.attention", "flash3", "auto|own|cudnn"]),
    Case("odc_pull_unknown", RUN + ["--set", "comm.odc_pull=dma"],
         ["comm.odc_pull", "dma", "kernel|copy-engine"]),
    Case("nccl_without_cuda", RUN + ["--set", "comm.collectives=nccl"],
         ["comm.collectives", "cuda", "auto|mpi"]),
    Case("dump_step_not_a_step", RUN + ["--set", "run.steps=3", "--set", "run.dump_step=3"],
         ["run.dump_step", "3", "0..2"]),
    Case("warmup_covers_every_step", RUN + ["--set", "run.steps=3", "--set", "run.warmup_steps=3"],
         ["run.warmup_steps", "3", "0..2"]),
    Case("warmup_beyond_steps_1proc", RUN + ["--set", "run.steps=2", "--set", "run.warmup_steps=5"],
         ["run.warmup_steps", "5", "0..1"], ranks=None),
    Case("base_cycle", ["run", "--config", "{in}/a.toml"], ["base", "a.toml", "b.toml", "includes itself"],
         files={"a.toml": 'base = ["b.toml"]\n', "b.toml": 'base = ["a.toml"]\n'}),
    Case("base_missing", ["run", "--config", "{in}/c.toml"], ["nope.toml", "cannot read"],
         files={"c.toml": 'base = ["nope.toml"]\n'}),
    Case("plan_bad_ranks_1proc", ["plan", "--config", DEMO, "--ranks", "0"],
         ["--ranks", "1..1000000"], ranks=None, add_out=False),
    Case("plan_bad_config", ["plan", "--config", DEMO, "--set", "model.heads=5"], ["model.heads"],
         add_out=False),
    # Options per command: one that another command takes is named as such.
    Case("plan_with_out", ["plan", "--config", DEMO, "--out", "x.h5"],
         ["--out", "is an option of 'run|simulate|calibrate', not of 'plan'"], ranks=None,
         add_out=False),
    Case("run_with_ranks", RUN + ["--ranks", "4"],
         ["--ranks", "is an option of 'plan|simulate', not of 'run'"]),
    Case("run_with_ranks_equals", RUN + ["--ranks=4"],
         ["--ranks", "is an option of 'plan|simulate', not of 'run'"], ranks=None),
    Case("unknown_option_after_valid", ["plan", "--config", DEMO, "--ranks", "2", "--bogus=1"],
         ["unknown option '--bogus=1'"], ranks=None, add_out=False),
    Case("config_equals_missing", ["run", "--config={in}/nope.toml"], ["nope.toml", "cannot read"],
         ranks=None),
    Case("empty_out_equals", RUN + SHORT + ["--out="], ["--out", "empty string"], ranks=None,
         add_out=False),
    Case("bad_ranks_equals", ["plan", "--config", DEMO, "--ranks=1e3"],
         ["--ranks", "'1e3' is not a rank count"], ranks=None, add_out=False),
    Case("short_option_without_value", ["run", "-c"], ["--config", "needs a value"], ranks=None,
         add_out=False),
    Case("set_empty_key", PLAN + ["--set", "=3"], ["--set", "'=3'", "key=value"], **ONE),
    Case("set_empty_value", PLAN + ["--set", "model.layers="], ["model.layers", "empty value"],
         **ONE),
    Case("set_unclosed_array", PLAN + ["--set", "run.name=[odc"], ["run.name", "not a valid TOML"],
         **ONE),
    Case("set_inline_table", PLAN + ["--set", "run.name={a=1}"], ["run.name", "inline table"],
         **ONE),
    Case("set_unclosed_string", PLAN + ["--set", 'run.name="odc'], ["run.name", "not a valid TOML"],
         **ONE),
    Case("set_last_one_wins_and_is_checked",
         PLAN + ["--set", "model.layers=1", "--set", "model.layers=abc"], ["model.layers", "abc"],
         **ONE),
    Case("set_without_value", PLAN + ["--set"], ["--set", "needs a value"], **ONE),
    Case("ranks_negative", ["plan", "--config", DEMO, "--ranks", "-1"], ["--ranks", "'-1'"], **ONE),
    Case("ranks_word", ["plan", "--config", DEMO, "--ranks", "abc"], ["--ranks", "'abc'"], **ONE),
    Case("ranks_too_many", ["plan", "--config", DEMO, "--ranks", "2000000"],
         ["--ranks", "1..1000000"], **ONE),
    Case("simulate_without_ranks", ["simulate", "--config", DEMO], ["--ranks", "simulate needs"],
         **ONE),
    Case("cost_on_plan", PLAN + ["--cost", "c.toml"], ["--cost", "not of 'plan'"], **ONE),
    Case("out_without_value", RUN + ["--out"], ["--out", "needs a value"], add_out=False),
    Case("stray_argument", PLAN + ["extra"], ["unknown option 'extra'"], **ONE),
    Case("unknown_short_option", PLAN + ["-x"], ["unknown option '-x'"], **ONE),
    Case("calibrate_without_runs", ["calibrate"], ["calibrate", "RUN.h5"], **ONE),
    # An empty file name is one error naming --config, not a file "" that cannot be read.
    Case("config_empty_equals_1proc", ["plan", "--config="], ["--config", "empty string"], **ONE),
    Case("config_empty", ["run", "--config", ""], ["--config", "empty string"]),
    Case("config_empty_after_file", RUN + ["--config="], ["--config", "empty string"]),
    Case("simulate_cost_missing", ["simulate", "--config", DEMO, "--ranks", "2", "--cost",
                                   "{in}/nope.toml"], ["--cost", "nope.toml", "cannot read"], **ONE),
]

# The class of each case (the rest are "config": values of keys).
CLI_CASES = {"unknown_option", "unknown_command", "unknown_command_1proc", "set_without_equals",
             "set_without_equals_1proc", "option_without_value", "no_config", "no_command_1proc",
             "plan_bad_ranks_1proc", "plan_with_out", "run_with_ranks", "run_with_ranks_equals",
             "unknown_option_after_valid", "empty_out", "empty_out_equals", "bad_ranks_equals",
             "short_option_without_value", "set_empty_key", "set_empty_value",
             "set_unclosed_array", "set_inline_table", "set_unclosed_string",
             "set_last_one_wins_and_is_checked", "set_without_value", "ranks_negative",
             "ranks_word", "ranks_too_many", "simulate_without_ranks", "cost_on_plan",
             "out_without_value", "stray_argument", "unknown_short_option",
             "calibrate_without_runs", "config_empty_equals_1proc", "config_empty",
             "config_empty_after_file"}
FILE_CASES = {"missing_config", "missing_config_1proc", "bad_toml_syntax", "unknown_key_in_file",
              "nan_float_in_file", "dump_is_out", "unwritable_out", "out_not_h5",
              "out_is_directory", "json_is_directory", "histogram_file_missing",
              "histogram_malformed", "histogram_length_above_max", "base_cycle", "base_missing",
              "config_equals_missing", "simulate_cost_missing"}
for _case in CASES:
    _case.kind = "cli" if _case.name in CLI_CASES else "files" if _case.name in FILE_CASES else "config"


def test_enough_cases():
    assert len(CASES) >= 18
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path):
    check_bad_input(case, tmp_path)


# --- good paths ------------------------------------------------------------------------

HELP_KEY = re.compile(r"^  (\w+\.\w+) \((integer|float|string|bool|bool/integer/\"auto\"|float/\"collectives\")\) = "
                      r"(.*?)(?:   allowed: (.*))?$")


def parse_help(text):
    """{key: (type, default TOML text, allowed text or None)} from `minipt --help`."""
    keys = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = HELP_KEY.match(line)
        if m:
            assert m.group(1) not in keys, "key listed twice: " + m.group(1)
            # Every key is followed by its one-line documentation.
            assert i + 1 < len(lines) and lines[i + 1].startswith("      ") and lines[i + 1].strip()
            keys[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return keys


@pytest.fixture(scope="module")
def help_text():
    proc = mr.run_minipt(["--help"], check=True)
    assert "error" not in proc.stderr.lower(), proc.stderr
    return proc.stdout


def test_help_lists_keys_with_defaults(help_text):
    assert help_text.startswith("minipt "), "help must start with minipt's own text"
    assert "usage: minipt run" in help_text and "Exit codes" in help_text
    keys = parse_help(help_text)
    typed_lines = re.findall(r"^  \S+ \([^)]+\) = ", help_text, re.M)
    assert len(typed_lines) >= 40
    assert len(keys) == len(typed_lines)
    assert keys["model.heads"][:2] == ("integer", "4")
    assert keys["model.layers"] == ("integer", "2", "[1, 1024]")
    assert keys["run.mode"] == ("string", '"fsdp"', "fsdp|odc")
    assert keys["balance.scheme"] == ("string", '"micro"',
                                      "none|micro|mini|localsort|arrival|localsort-packed")
    assert keys["compute.backend"] == ("string", '"emulated"', "emulated|kokkos|cuda")
    assert keys["workload.distribution"][2] == "constant|uniform|lognormal|pareto|bimodal|histogram"
    assert keys["compute.peak_tflops"][:2] == ("float", "989.0")
    assert keys["run.json"][:2] == ("bool", "true")
    assert keys["model.recompute"][:2] == ('bool/integer/"auto"', "true")
    assert keys["run.out"][:2] == ("string", '"minipt.h5"')
    for section in ("run", "model", "workload", "balance", "compute", "comm", "optim"):
        assert "[%s]" % section in help_text
        assert any(k.startswith(section + ".") for k in keys)


def test_help_defaults_are_the_resolved_defaults(help_text, tmp_path):
    """A run from an empty configuration resolves every key to the default --help shows,
    and resolves no key that --help leaves out."""
    empty = tmp_path / "empty.toml"
    empty.write_text("# every key at its default\n")
    out = tmp_path / "defaults.h5"
    proc = mr.run_minipt(["run", "--config", str(empty), "--out", str(out), "--quiet"], check=True)
    assert "PERFORMANCE" in proc.stdout
    summary = json.loads((tmp_path / "defaults.json").read_text())
    resolved = tomllib.loads(summary["config_toml"])
    flat = {"%s.%s" % (sec, k): v for sec, table in resolved.items() for k, v in table.items()}
    keys = parse_help(help_text)
    assert set(flat) == set(keys)
    for key, (_, default_text, _) in keys.items():
        default = tomllib.loads("v = " + default_text)["v"]
        if key == "run.out":
            assert flat[key] == str(out)
        else:
            assert flat[key] == default, key


def test_help_under_mpirun_prints_once():
    proc = mr.run_minipt(["--help"], ranks=2, check=True)
    assert proc.stdout.count("usage: minipt run") == 1
    assert proc.stdout.startswith("minipt ")


def test_help_after_command():
    proc = mr.run_minipt(["run", "--config", DEMO, "--help"], check=True)
    assert "usage: minipt run" in proc.stdout


def test_help_spellings(help_text):
    """-h, `help` and --help after any command print the same help."""
    for args in (["-h"], ["help"], ["plan", "-h"], ["calibrate", "--help"]):
        proc = mr.run_minipt(args, check=True)
        assert proc.stdout == help_text, args


def test_option_equals_form_and_repeated_ranks():
    """--opt=value works like --opt value; a repeated --ranks takes the last one."""
    proc = mr.run_minipt(["plan", "--config=" + DEMO, "--ranks=2", "--set=run.steps=2"],
                         check=True)
    assert mr.parse_bound(proc.stdout)["ranks"] == 2
    proc = mr.run_minipt(["plan", "-c", DEMO, "--ranks", "2", "--ranks", "3", "-s",
                          "run.steps=2"], check=True)
    assert mr.parse_bound(proc.stdout)["ranks"] == 3


def test_version():
    proc = mr.run_minipt(["--version"], check=True)
    m = re.fullmatch(r"minipt \d+\.\d+\.\d+ \(\S+\)(?: backends: ([\w ]+))?\n", proc.stdout)
    assert m, proc.stdout
    if m.group(1):
        assert "emulated" in m.group(1).split()
    proc2 = mr.run_minipt(["--version"], ranks=2, check=True)
    assert proc2.stdout == proc.stdout  # printed once, by rank 0


def test_plan_bound():
    proc = mr.run_minipt(["plan", "--config", DEMO, "--ranks", "4", "--set", "run.steps=5",
                          "--set", "run.warmup_steps=1"], check=True)
    bound = mr.parse_bound(proc.stdout)
    assert bound["ranks"] == 4
    assert bound["steps"] == 4  # measured: 5 steps less 1 warm-up
    assert bound["ratio"] >= 1.0
    assert bound["fsdp_ms"] > 0 and bound["odc_ms"] > 0
    assert bound["ratio"] == pytest.approx(bound["fsdp_ms"] / bound["odc_ms"], abs=1e-3)
    for step in range(5):
        block = proc.stdout.split("step %d (fsdp+micro):\n" % step)[1]
        rank_lines = [l for l in block.splitlines()[:4]]
        assert [l.split(":")[0].strip() for l in rank_lines] == ["rank %d" % r for r in range(4)]
        # fsdp: every rank runs the same number of microbatches.
        counts = {re.search(r"(\d+) microbatches", l).group(1) for l in rank_lines}
        assert len(counts) == 1, block


def test_plan_uses_world_size_under_mpirun():
    proc = mr.run_minipt(["plan", "--config", DEMO], ranks=2, check=True)
    assert mr.parse_bound(proc.stdout)["ranks"] == 2
    assert proc.stdout.count("BOUND ") == 1


def test_plan_balanced_workload_has_nothing_to_gain():
    """Every sequence the same length and as many per rank: odc's bound is exactly 1."""
    balanced = os.path.join(mr.INPUTS, "workloads", "balanced.toml")
    proc = mr.run_minipt(["plan", "--config", DEMO, "--config", balanced, "--ranks", "4"],
                         check=True)
    assert mr.parse_bound(proc.stdout)["ratio"] == pytest.approx(1.0, abs=1e-4)


def test_base_diamond_and_override_order(tmp_path):
    """Two bases sharing a third load it once (no false 'cycle'), later files override
    earlier ones, --set overrides files, and a file also named by a base may be given
    with --config."""
    (tmp_path / "common.toml").write_text("[model]\nhidden = 64\nlayers = 3\n")
    (tmp_path / "a.toml").write_text('base = ["common.toml"]\n[model]\nhidden = 128\n')
    (tmp_path / "b.toml").write_text('base = ["common.toml"]\n[model]\nheads = 8\n')
    (tmp_path / "top.toml").write_text(
        'base = ["a.toml", "b.toml"]\n[workload]\nmin = 64\nmax = 1024\nmean = 256.0\n'
        "minibatch_size = 4\n[run]\nsteps = 2\n")
    (tmp_path / "later.toml").write_text("[model]\nkv_heads = 4\n")
    out = tmp_path / "o.h5"
    mr.run_minipt(["run", "--config", str(tmp_path / "common.toml"), "--config",
                   str(tmp_path / "top.toml"), "--config", str(tmp_path / "later.toml"),
                   "--set", "model.layers=1", "--out", str(out), "--quiet"], check=True)
    summary = json.loads((tmp_path / "o.json").read_text())
    model = tomllib.loads(summary["config_toml"])["model"]
    assert (model["hidden"], model["heads"], model["kv_heads"], model["layers"]) == (128, 8, 4, 1)


def test_out_with_awkward_file_name(tmp_path):
    """--out takes any file name: spaces, quotes, backslashes, non-ASCII."""
    directory = tmp_path / "with space"
    directory.mkdir()
    out = str(directory / 'ü "quoted" back\\slash.h5')
    proc = mr.run_minipt(["run", "--config", DEMO] + SHORT + ["--out", out, "--quiet"], ranks=2,
                         check=True)
    assert "timeline: %s" % out in proc.stdout
    assert sorted(os.listdir(directory)) == sorted([os.path.basename(out),
                                                    os.path.basename(out)[:-3] + ".json"])
    summary = json.loads(open(out[:-3] + ".json", encoding="utf-8").read())
    assert summary["h5"] == out
    assert tomllib.loads(summary["config_toml"])["run"]["out"] == out


MPI_PEERS = "onesided mpi, collectives mpi"


@pytest.mark.parametrize("declared,expected,peers", [
    (0, "nodes 1x4", "same node: %s | other node: none" % MPI_PEERS),
    (2, "nodes 2x2", "same node: %s | other node: %s" % (MPI_PEERS, MPI_PEERS)),
    (1, "nodes 4x1", "same node: none | other node: %s" % MPI_PEERS)])
def test_node_layout_detected_or_declared(declared, expected, peers, tmp_path):
    """comm.ranks_per_node = 0 detects one 4-rank node on this host; K > 0 declares K-rank
    nodes; the banner reports the layout the transports were chosen for, and the transports
    of each peer class."""
    proc = mr.run_minipt(RUN + SHORT + ["--set", "comm.ranks_per_node=%d" % declared,
                                        "--out", str(tmp_path / "n.h5")], ranks=4, check=True)
    assert expected in proc.stdout, proc.stdout
    assert peers in proc.stdout, proc.stdout


@pytest.mark.parametrize("scheme", ["localsort", "localsort-packed", "arrival"])
@pytest.mark.parametrize("mode", ["fsdp", "odc"])
def test_localsort_runs_in_both_modes(mode, scheme, tmp_path):
    """balance.scheme = localsort (the reference's LocalSort, the paper's collective
    baseline: one sequence per microbatch), localsort-packed and arrival (no balancing,
    one sequence per microbatch: the RL baseline) plan and train."""
    proc = mr.run_minipt(RUN + SHORT + ["--set", "balance.scheme=" + scheme, "--set",
                                        "run.mode=" + mode, "--out", str(tmp_path / "l.h5")],
                         ranks=2, check=True)
    perf = mr.parse_performance(proc.stdout)
    assert perf["balance"] == scheme and perf["mode"] == mode, proc.stdout
    from minipt_analysis.cli import main as analyze
    assert analyze(["validate", str(tmp_path / "l.h5")]) == 0
    if scheme in ("localsort", "arrival"):  # one sequence per microbatch
        with h5py.File(tmp_path / "l.h5", "r") as f:
            w = f["workload"]
            keys = list(zip(w["step"][:], w["rank"][:], w["microbatch"][:]))
            assert len(keys) == len(set(keys))


def test_workload_tail_and_refine_are_recorded(tmp_path):
    """workload.tail and balance.refine are in the timeline's resolved configuration and
    `minipt plan` names them; with tail = clamp and refine = off its first line is the
    earlier one."""
    out = tmp_path / "t.h5"
    mr.run_minipt(RUN + SHORT + ["--set", "workload.tail=drop", "--set", "balance.refine=on",
                                 "--out", str(out)], ranks=2, check=True)
    with h5py.File(out, "r") as f:
        resolved = tomllib.loads(f.attrs["config_toml"])
    assert resolved["workload"]["tail"] == "drop" and resolved["balance"]["refine"] == "on"
    first = mr.run_minipt(PLAN, check=True).stdout.splitlines()[0]
    assert "(cost flops, swap-refined odc plans, tail resample)" in first, first
    first = mr.run_minipt(PLAN + ["--set", "balance.refine=on"], check=True).stdout.splitlines()[0]
    assert "(cost flops, swap-refined plans, tail resample)" in first, first
    first = mr.run_minipt(PLAN + ["--set", "workload.tail=clamp", "--set", "balance.refine=off"],
                          check=True).stdout.splitlines()[0]
    assert first.endswith("balance micro (cost flops), token budget 65536"), first


def test_refine_auto_leaves_fsdp_plans_alone_and_refines_odc_plans():
    """balance.refine = auto: the fsdp plan is the one of refine = off, the odc plan (the
    bound's odc+mini) the one of refine = on."""
    def plan(refine, mode="fsdp", scheme="micro"):
        out = mr.run_minipt(["plan", "--config", DEMO, "--ranks", "4", "--set", "run.steps=3",
                             "--set", "run.mode=" + mode, "--set", "balance.scheme=" + scheme,
                             "--set", "balance.refine=" + refine], check=True).stdout
        return out.split("\n", 1)[1]  # without the first line, which names the setting
    def own(text):  # the plan's own rank lines
        return [l for l in text.splitlines() if l.startswith("  rank ")]
    def bound(text):
        return mr.parse_bound(text)
    assert own(plan("auto")) == own(plan("off"))
    assert own(plan("auto", "odc", "mini")) == own(plan("on", "odc", "mini"))
    assert own(plan("auto", "odc", "micro")) == own(plan("on", "odc", "micro"))
    assert bound(plan("auto"))["odc_ms"] == bound(plan("on"))["odc_ms"]
    assert bound(plan("auto"))["fsdp_ms"] == bound(plan("off"))["fsdp_ms"]


def test_equal_counts_odc_mini_runs(tmp_path):
    """balance.equal_counts = true with odc + LB-Mini: a run whose ranks hold equal counts."""
    mr.run_minipt(RUN + SHORT + ["--set", "balance.equal_counts=true", "--set", "run.mode=odc",
                                 "--set", "balance.scheme=mini", "--set",
                                 "workload.minibatch_size=4", "--out", str(tmp_path / "e.h5")],
                  ranks=2, check=True)
    import collections
    import h5py
    with h5py.File(tmp_path / "e.h5") as f:
        w = f["workload"]
        held = collections.Counter(zip(w["step"][()].tolist(), w["rank"][()].tolist()))
    assert held and set(held.values()) == {2}, held


def test_readme_key_table_matches_help():
    """README.md's configuration reference lists every key of `minipt --help` with the
    same type, default and allowed values, and no other key."""
    help_text = mr.run_minipt(["--help"], check=True).stdout
    keys = {}
    key = r"([A-Za-z0-9_]+\.[A-Za-z0-9_]+)"  # sim.inter_bandwidth_GBps, optim.beta1
    for m in re.finditer(r"^  " + key + r" \(([^)]+)\) = (.*?)(?:   allowed: (.*))?$",
                         help_text, re.M):
        keys[m.group(1)] = (m.group(2), m.group(3).strip(), (m.group(4) or "").strip())
    readme = open(os.path.join(mr.REPO_ROOT, "README.md"), encoding="utf-8").read()
    rows = {}
    for m in re.finditer(r"^\| `" + key + r"` \| ([^|`]+?) \| `(.*?)` \| (.*?) \| .* \|$",
                         readme, re.M):
        rows[m.group(1)] = (m.group(2), m.group(3), m.group(4).replace("\\|", "|").strip())
    assert len(keys) > 50, help_text
    assert set(rows) == set(keys), (sorted(set(keys) - set(rows)), sorted(set(rows) - set(keys)))
    for k, (typ, default, allowed) in keys.items():
        assert rows[k][0] == typ, (k, rows[k], keys[k])
        assert rows[k][1] == default, (k, rows[k], keys[k])
        if typ == "string" and "|" in allowed:
            assert rows[k][2] == allowed, (k, rows[k], keys[k])
