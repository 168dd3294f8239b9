"""Bad input files for `minipt run`: configuration files and the files they include
(`base = [...]`), histogram files (`workload.histogram_file`) and output paths. Each case
is one message naming the file (with :line where a row or line is at fault), exit code 2
within bad_input.TIME_LIMIT_S, and no output file left (bad_input.check_bad_input)."""

import os

import pytest

import minipt_runner as mr
from bad_input import Case, check_bad_input

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

DEMO = mr.DEMO_CONFIG
# Keeps a run that wrongly passed validation short (it would then fail the rc check).
SHORT = ["--set", "run.steps=2", "--set", "model.layers=1", "--set", "workload.minibatch_size=2"]
RUN = ["run", "--config", DEMO] + SHORT
HIST = RUN + ["--set", "workload.distribution=histogram",
              "--set", 'workload.histogram_file="{in}/h.csv"']


def as_root():
    return "root reads files whatever their mode" if os.geteuid() == 0 else None


def unreadable(name):
    def setup(in_dir):
        (in_dir / name).write_text("[model]\nlayers = 1\n")
        os.chmod(in_dir / name, 0)
    return setup


def mkdir(name):
    return lambda in_dir: (in_dir / name).mkdir()


def symlink(name, target):
    return lambda in_dir: os.symlink(target.replace("{in}", str(in_dir)), in_dir / name)


def conf(*files):
    """`run` with these files of {in} as --config after the demo."""
    args = ["run", "--config", DEMO]
    for f in files:
        args += ["--config", "{in}/" + f]
    return args + SHORT


def hist(name, text, must, args_extra=(), **kw):
    return Case("histogram_" + name, HIST + list(args_extra),
                ["workload.histogram_file", "{in}/h.csv"] + must, files={"h.csv": text},
                kind="files", **kw)


CASES = [
    # Configuration files.
    Case("config_directory", conf("d.toml"), ["{in}/d.toml", "cannot read", "Is a directory"],
         setup=mkdir("d.toml")),
    Case("config_dangling_link", conf("l.toml"), ["{in}/l.toml", "cannot read"],
         setup=symlink("l.toml", "{in}/gone.toml")),
    Case("config_unreadable", conf("u.toml"), ["{in}/u.toml", "Permission denied"],
         setup=unreadable("u.toml"), skip_if=as_root),
    Case("config_dev_zero", ["run", "--config", "/dev/zero"] + SHORT,
         ["/dev/zero", "not a regular file"]),
    Case("config_second_missing", conf("nope.toml"), ["{in}/nope.toml", "cannot read"]),
    Case("config_not_utf8", conf("x.toml"), ["{in}/x.toml:2:", "not UTF-8"],
         files={"x.toml": b"[run]\nname = \"\xff\"\n"}),
    Case("config_non_ascii_key", conf("x.toml"), ["{in}/x.toml:2:1:", "U+00E9"],
         files={"x.toml": "[run]\n\u00e9tape = 1\n"}),
    Case("config_non_ascii_in_number", conf("x.toml"), ["{in}/x.toml:2:", "U+0416", "number"],
         files={"x.toml": "[run]\nsteps = 2\u0416\n"}),
    Case("config_bad_escape", conf("x.toml"), ["{in}/x.toml:2:", "backslash followed by U+00E9"],
         files={"x.toml": '[run]\nname = """\\\u00e9"""\n'}),
    Case("config_duplicate_key", conf("x.toml"), ["{in}/x.toml:3:", "redefine"],
         files={"x.toml": "[run]\nsteps = 2\nsteps = 3\n"}),
    Case("config_table_twice", conf("x.toml"), ["{in}/x.toml:3:", "run"],
         files={"x.toml": "[run]\nsteps = 2\n[run]\n"}),
    Case("config_unterminated_string", conf("x.toml"), ["{in}/x.toml:2:"],
         files={"x.toml": '[run]\nname = "abc\n'}),
    Case("config_syntax_error_late", conf("x.toml"), ["{in}/x.toml:5:"],
         files={"x.toml": "[run]\nsteps = 2\n\n# fine so far\nmode = = 3\n"}),
    Case("config_control_character", conf("x.toml"), ["{in}/x.toml:1:"],
         files={"x.toml": 'a = "\x01"\n'}),
    Case("config_empty_key", conf("x.toml"), ["{in}/x.toml:1:"], files={"x.toml": "= 3\n"}),
    Case("config_key_too_deep", conf("x.toml"), ["{in}/x.toml:1:", "nests more than 128"],
         files={"x.toml": "a." * 200 + "b = 1\n"}),
    Case("config_unknown_key_names_it", conf("x.toml"), ["run.stepz", "did you mean run.steps"],
         files={"x.toml": "[run]\nstepz = 2\n"}),
    # Files included with base.
    Case("base_directory", conf("a.toml"), ["{in}/d.toml", "Is a directory"],
         files={"a.toml": 'base = ["d.toml"]\n'}, setup=mkdir("d.toml")),
    Case("base_syntax_error", conf("a.toml"), ["{in}/b.toml:2:"],
         files={"a.toml": 'base = ["b.toml"]\n', "b.toml": "[model]\nlayers = [\n"}),
    Case("base_nested_missing", conf("a.toml"), ["{in}/sub/gone.toml", "cannot read"],
         files={"a.toml": 'base = ["sub/b.toml"]\n', "sub/b.toml": 'base = ["gone.toml"]\n'}),
    Case("base_not_a_string", conf("a.toml"), ["base", "{in}/a.toml", "file name"],
         files={"a.toml": "base = 3\n"}),
    Case("base_array_of_numbers", conf("a.toml"), ["base", "{in}/a.toml", "array of file names"],
         files={"a.toml": "base = [1, 2]\n"}),
    Case("base_includes_itself", conf("a.toml"), ["base", "{in}/a.toml", "includes itself"],
         files={"a.toml": 'base = ["a.toml"]\n'}),
    Case("base_too_deep", conf("f0.toml"), ["base", "nests more than 16 levels"],
         files={"f%d.toml" % k: 'base = ["f%d.toml"]\n' % (k + 1) for k in range(20)}),
    Case("base_not_utf8", conf("a.toml"), ["{in}/b.toml:1:", "not UTF-8"],
         files={"a.toml": 'base = ["b.toml"]\n', "b.toml": b"# \xc3\x28\n"}),
    Case("base_unknown_key", conf("a.toml"), ["model.layerz", "did you mean model.layers"],
         files={"a.toml": 'base = ["b.toml"]\n', "b.toml": "[model]\nlayerz = 1\n"}),
    # Histogram files (workload.histogram_file).
    Case("histogram_directory", HIST, ["workload.histogram_file", "{in}/h.csv", "Is a directory"],
         setup=mkdir("h.csv"), kind="files"),
    Case("histogram_dev_zero", RUN + ["--set", "workload.distribution=histogram",
                                      "--set", 'workload.histogram_file="/dev/zero"'],
         ["workload.histogram_file", "/dev/zero", "not a regular file"], kind="files"),
    Case("histogram_unreadable", HIST, ["workload.histogram_file", "{in}/h.csv", "Permission"],
         setup=unreadable("h.csv"), skip_if=as_root, kind="files"),
    Case("histogram_relative_to_config", conf("sub/c.toml"),
         ["workload.histogram_file", "{in}/sub/lengths.csv", "cannot read"],
         files={"sub/c.toml": '[workload]\ndistribution = "histogram"\n'
                              'histogram_file = "lengths.csv"\n', "lengths.csv": "9000,1\n"}),
    # drop skips rows above workload.max (65536 in the demo): none left to draw.
    Case("histogram_drop_all_too_long", HIST + ["--set", "workload.tail=drop"],
         ["workload.tail", "{in}/h.csv", "longer than workload.max = 65536", "clamp|resample|drop"],
         files={"h.csv": "length,count\n70000,3\n90000,1\n"}, kind="files"),
    hist("empty", "", ["no 'length,count' rows"]),
    hist("header_only", "length,count\n", ["no 'length,count' rows"]),
    hist("comments_only", "# lengths\n\n# none\n", ["no 'length,count' rows"]),
    hist("one_field", "9000\n", [":1:", "expected 'length,count'", "'9000'"]),
    hist("three_fields", "9000,1,2\n", [":1:", "'9000,1,2'"]),
    hist("float_count", "length,count\n9000,2.5\n", [":2:", "'9000,2.5'"]),
    hist("float_length", "9000.5,2\n", [":1:", "'9000.5,2'"]),
    hist("word_count", "9000,3\n9001,many\n", [":2:", "'9001,many'"]),
    hist("hex_length", "0x2400,3\n", [":1:", "'0x2400,3'"]),
    hist("space_in_number", "9 000,3\n", [":1:", "'9 000,3'"]),
    hist("semicolon", "9000;3\n", [":1:", "'9000;3'"]),
    hist("negative_count", "9000,3\n9001,-1\n", [":2:", "count must be >= 0", "-1"]),
    hist("zero_length", "0,3\n", [":1:", "length must be >= 1"]),
    hist("negative_length", "9000,1\n-5,3\n", [":2:", "length must be >= 1", "-5"]),
    hist("length_below_min", "9000,1\n100,3\n", [":2:", "100", "[8192, 65536]"],
         args_extra=["--set", "workload.tail=clamp"]),  # resample/drop skip or raise the row
    hist("length_overflow", "99999999999999999999,1\n", [":1:", "99999999999999999999"]),
    hist("every_count_zero", "9000,0\n9001,0\n", ["every count is zero"]),
    hist("counts_too_large", "9000,4611686018427387904\n9001,4611686018427387904\n",
         ["counts sum to more than 2^62"]),
    hist("row_after_comments", "# measured\n\n9000,1\n\n  # more\nxx\n", [":6:", "'xx'"]),
    hist("header_twice", "length,count\n9000,1\nlength,count\n", [":3:", "'length,count'"]),
    hist("not_utf8_row", b"9000,1\n\xff\xfe,2\n", [":2:", r"'\xFF\xFE,2'"]),
    # Output paths.
    Case("out_parent_is_file", RUN + ["--out", "{in}/f/x.h5"], ["run.out", "{in}/f/x.h5"],
         files={"f": "a file\n"}, add_out=False),
    Case("out_missing_directory", RUN + ["--out", "{out}/no/such/x.h5"], ["run.out", "x.h5"],
         add_out=False),
    Case("dump_is_directory", RUN + ["--set", 'run.dump="{out}/d.h5"'], ["run.dump", "d.h5"],
         out_dirs=["d.h5"]),
    Case("dump_missing_directory", RUN + ["--set", 'run.dump="{out}/no/d.h5"'],
         ["run.dump", "d.h5"]),
]
for _case in CASES:
    _case.kind = "files"


def test_cases_are_unique():
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_file(case, tmp_path):
    check_bad_input(case, tmp_path)
