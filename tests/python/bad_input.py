"""The contract every bad-input case of minipt is checked against (test_cli.py,
test_bad_input_files.py): exit code 2 within a time limit, exactly one message on stderr
("minipt: error: ...", rank 0's only) that holds the case's substrings (the key or file it
names), no crash or abort noise, and no output file left in the input or output
directory. Case ids start with their class (config-, cli-, files-) so that
`pytest --collect-only -q` counts them by class."""

import os

import minipt_runner as mr

# A bad-input job that has not ended after this long has hung (or waits on a file).
TIME_LIMIT_S = 30

# Text that means something crashed or aborted instead of reporting bad input.
NOISE = ("Traceback", "terminate called", "what():", "MPI_ABORT", "MPI_Abort", "Aborted",
         "core dumped", "Segmentation fault", "Kokkos::", "exited on signal",
         ": error: rank", "minipt: rank ")

# Files an erroring run must not leave (outputs, their temporaries, JSON summaries).
OUTPUT_SUFFIXES = (".h5", ".h5.tmp", ".json", ".json.tmp")


class Case:
    """One bad-input case of class `kind` (config, cli or files). `args` may use {in}
    (input files) and {out} (output dir); `files` are written to {in} first (str: text,
    bytes: as is); `must` are substrings of the error message; `ranks` None runs minipt
    without the launcher; `setup(in_dir)` may prepare more (directories, links, modes)."""

    def __init__(self, name, args, must, ranks=2, files=None, add_out=True, out_dirs=(),
                 skip_if=None, kind="config", setup=None):
        self.name, self.args, self.must, self.ranks = name, args, must, ranks
        self.skip_if = skip_if  # callable giving a reason to skip, or None
        self.files = files or {}
        self.out_dirs = out_dirs  # directories to create in {out} first
        self.add_out = add_out  # append --out {out}/run.h5 so outputs land in a checked dir
        self.kind = kind
        self.setup = setup

    @property
    def id(self):
        return "%s-%s" % (self.kind, self.name)


def output_files(*dirs):
    found = []
    for d in dirs:
        for root, _, names in os.walk(d):
            found += [os.path.join(root, n) for n in names if n.endswith(OUTPUT_SUFFIXES)]
    return found


def check_bad_input(case, tmp_path):
    """Runs the case and asserts the contract; returns the message."""
    import pytest

    if case.skip_if is not None and case.skip_if():
        pytest.skip(case.skip_if())
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    for name, content in case.files.items():
        path = in_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for name in case.out_dirs:
        (out_dir / name).mkdir()
    if case.setup is not None:
        case.setup(in_dir)
    args = [a.replace("{in}", str(in_dir)).replace("{out}", str(out_dir)) for a in case.args]
    if case.add_out:
        args += ["--out", str(out_dir / "run.h5")]
    # cwd is the output dir, so a default output path (minipt.h5) would land there too.
    proc = mr.run_minipt(args, ranks=case.ranks, cwd=str(out_dir), timeout=TIME_LIMIT_S)
    context = "args %s\n--- stdout\n%s\n--- stderr\n%s" % (args, proc.stdout, proc.stderr)

    assert proc.returncode == 2, context
    for noise in NOISE:
        assert noise not in proc.stderr and noise not in proc.stdout, context
    assert "PERFORMANCE" not in proc.stdout, context

    stderr = mr.launcher_free_stderr(proc.stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    own = [l for l in lines if l.startswith("minipt")]
    assert len(own) == 1, "want exactly one message (rank 0 only)\n" + context
    message = own[0]
    assert message.startswith("minipt: error: "), context
    # Besides the message, only the usage text may follow.
    for line in lines:
        if line is message:
            continue
        assert line.startswith("usage: minipt") or line.startswith("       minipt"), context
    for text in case.must:
        text = text.replace("{in}", str(in_dir))
        assert text in message, "%r not in the message\n%s" % (text, context)

    leftovers = output_files(out_dir, in_dir)
    assert not leftovers, "bad input left files: %s\n%s" % (leftovers, context)
    return message
