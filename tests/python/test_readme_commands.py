"""README.md's shell commands are runnable as written from the repository root (issue 30,
item 7): every ```bash / ```sh / ```console block is read command by command, and

* every path a command names exists in the repository, is a build product
  (build/cpu/src/minipt, build-cuda/...), or is an output (under out/, or the argument of
  an output option such as --out / -o);
* every --option given to minipt (direct, or under run/mpirun), run/suite/run.py and
  minipt-analyze SUBCOMMAND is one that tool's --help lists, and every `--set key=value`
  (and run/demo.sh's key=value arguments) names a key of `minipt --help`.

The checker is also run on made-up commands, which it must reject, so it cannot pass by
checking nothing. Needs MINIPT_BIN (for `minipt --help`).
"""

import functools
import os
import re
import shlex
import subprocess
import sys

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

README = os.path.join(mr.REPO_ROOT, "README.md")
RUN_PY = os.path.join(mr.REPO_ROOT, "run", "suite", "run.py")
FENCE = re.compile(r"^```(\S*)\s*$")
SHELL_FENCES = ("bash", "sh", "console", "shell")
# What a build makes (the tree has none of these before building).
BUILD_PRODUCTS = {"build/cpu", "build/cuda", "build-cuda", "build/cpu/src/minipt",
                  "build/cuda/src/minipt", "build-cuda/src/minipt", "build-cuda/tests/gpu"}
MINIPT_PROGRAMS = {"build/cpu/src/minipt", "build/cuda/src/minipt", "build-cuda/src/minipt",
                   "minipt"}
OUTPUT_OPTIONS = {"--out", "-o", "--output", "--prefix", ">", ">>"}
SEPARATORS = {"&&", "||", "|", ";", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_blocks(text):
    """[(first line number, [lines])] of the shell code blocks; an unclosed fence fails."""
    blocks, current, start, lang = [], None, 0, None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if current is None and m:
            current, start, lang = [], n, m.group(1)
        elif current is not None and line.startswith("```"):
            assert line.strip() == "```", "line %d: a fence closes with ``` alone" % n
            if lang in SHELL_FENCES:
                blocks.append((start, lang, current))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, "the code block opened at line %d never closes" % start
    return blocks


def commands(block_lang, lines):
    """The block's commands as token lists (continuations joined, comments dropped,
    split at && || | ; &; console blocks: only the `$ ` lines)."""
    logical, pending = [], ""
    for line in lines:
        if block_lang == "console":
            if pending == "" and not line.startswith("$ "):
                continue
            line = line[2:] if pending == "" else line
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert pending == "", "a command ends in a line continuation"
    result = []
    for text in logical:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
        lex.whitespace_split = True
        lex.commenters = "#"
        tokens = list(lex)  # raises ValueError on unbalanced quotes
        cmd = []
        for t in tokens:
            if t in SEPARATORS:
                if cmd:
                    result.append(cmd)
                cmd = []
            else:
                cmd.append(t)
        if cmd:
            result.append(cmd)
    return result


@functools.lru_cache(maxsize=None)
def minipt_help():
    return subprocess.run([mr.minipt_bin(), "--help"], capture_output=True, text=True,
                          timeout=60).stdout


@functools.lru_cache(maxsize=None)
def minipt_keys():
    return set(re.findall(r"^  ([A-Za-z0-9_]+\.[A-Za-z0-9_]+) \(", minipt_help(), re.M))


@functools.lru_cache(maxsize=None)
def minipt_options():
    usage = minipt_help().split("\n\n")[1]  # the usage lines
    return set(re.findall(r"(--[a-z][a-z-]*)", usage)) | {"--help", "-h"}


def argparse_options(argv):
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.path.join(mr.REPO_ROOT, "analysis")))
    assert out.returncode == 0, out.stdout + out.stderr
    # The option lines of argparse's help ("  -o FILE, --output FILE   text"): the part
    # before the description only, so options named in descriptions do not count.
    found = set()
    for line in out.stdout.splitlines():
        if re.match(r"^  -", line):
            found |= set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line.strip().split("  ")[0]))
    return found


@functools.lru_cache(maxsize=None)
def run_py_options():
    return argparse_options([sys.executable, RUN_PY])


@functools.lru_cache(maxsize=None)
def analyze_options(sub):
    return argparse_options([sys.executable, "-m", "minipt_analysis", sub])


@functools.lru_cache(maxsize=None)
def analyze_commands():
    out = subprocess.run([sys.executable, "-m", "minipt_analysis", "--help"], capture_output=True,
                         text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.path.join(mr.REPO_ROOT, "analysis")))
    return set(re.findall(r"^    ([a-z0-9]+)\b", out.stdout, re.M))


def tracked_top_level():
    return set(os.listdir(mr.REPO_ROOT)) - {".git"}


def looks_like_path(token):
    return ("/" in token and not token.startswith(("-", "http://", "https://", "/"))
            and not any(c in token for c in "${}*?<>") and "..." not in token
            and "…" not in token)


def check_path(token, after_output_option, problems, where):
    path = token.rstrip("/")
    if path in BUILD_PRODUCTS:
        return
    first = path.split("/")[0]
    if first in ("build", "build-cuda"):
        problems.append("%s: %s is not a build product this README may name" % (where, token))
    elif first == "out" or after_output_option:
        return  # an output
    elif not os.path.exists(os.path.join(mr.REPO_ROOT, path)):
        problems.append("%s: %s does not exist in the repository" % (where, token))


def check_set(kv, problems, where):
    key = kv.split("=", 1)[0]
    if "=" not in kv or key not in minipt_keys():
        problems.append("%s: --set %s: %r is not a key of minipt --help" % (where, kv, key))


def check_options(tokens, known, problems, where, tool):
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("-") and not re.match(r"^-\d", t):
            opt = t.split("=", 1)[0]
            if opt not in known:
                problems.append("%s: %s has no option %s" % (where, tool, opt))
            if opt in ("--set", "--set-odc"):
                if "=" in t:
                    value = t.split("=", 1)[1]
                else:
                    value = tokens[i + 1] if i + 1 < len(tokens) else ""
                check_set(value, problems, where)
        i += 1


def check_command(cmd, problems, where):
    # Environment assignments first: their values may hold paths or --set pairs.
    while cmd and ENV_ASSIGNMENT.match(cmd[0]):
        name, value = cmd[0].split("=", 1)
        parts = shlex.split(value) if value else []
        for j, p in enumerate(parts):
            if p == "--set" and j + 1 < len(parts):
                check_set(parts[j + 1], problems, where)
            elif looks_like_path(p):
                check_path(p, False, problems, where)
        cmd = cmd[1:]
    if not cmd:
        return
    for j, t in enumerate(cmd):
        value = t.split("=", 1)[1] if re.match(r"^[\w.-]+=", t) else t
        if looks_like_path(value):
            check_path(value, j > 0 and cmd[j - 1] in OUTPUT_OPTIONS, problems, where)
    prog, args = cmd[0], cmd[1:]
    if prog in ("python3", "python") and args and args[0].endswith(".py"):
        prog, args = args[0], args[1:]
    if prog == "run/mpirun":
        # run/mpirun -n N [launcher options] PROGRAM ...: the program is the first path.
        k = 0
        while k < len(args) and not looks_like_path(args[k]):
            k += 1
        if k == len(args):
            problems.append("%s: run/mpirun starts no program" % where)
            return
        prog, args = args[k], args[k + 1:]
    if prog in MINIPT_PROGRAMS:
        check_options(args, minipt_options(), problems, where, "minipt")
    elif prog == "run/suite/run.py":
        check_options(args, run_py_options(), problems, where, "run/suite/run.py")
    elif prog == "minipt-analyze":
        if not args or args[0] not in analyze_commands():
            problems.append("%s: minipt-analyze has no command %s" % (where, args[:1]))
            return
        check_options(args[1:], analyze_options(args[0]), problems, where,
                      "minipt-analyze " + args[0])
    elif prog == "run/demo.sh":
        for kv in args:
            check_set(kv, problems, where)


def check_markdown(text):
    """(problems, number of commands checked) for a README text."""
    problems, count = [], 0
    for start, lang, lines in shell_blocks(text):
        for cmd in commands(lang, lines):
            count += 1
            check_command(cmd, problems, "block at line %d: %s" % (start, " ".join(cmd)[:80]))
    return problems, count


def test_readme_commands_name_existing_paths_and_options():
    problems, count = check_markdown(open(README, encoding="utf-8").read())
    assert count >= 25, "only %d commands found in README.md's shell blocks" % count
    assert problems == [], "\n".join(problems)


def test_readme_runs_minipt_through_run_mpirun_not_bare():
    # Every MPI launch in the README goes through run/mpirun (root, oversubscription),
    # and minipt is called by its build path (a build does not put it on PATH).
    for start, lang, lines in shell_blocks(open(README, encoding="utf-8").read()):
        for cmd in commands(lang, lines):
            assert cmd[0] not in ("mpirun", "mpiexec", "minipt"), (start, cmd)


def block(*lines):
    return "intro\n\n```bash\n" + "\n".join(lines) + "\n```\n"


@pytest.mark.parametrize("text, expected", [
    (block("build/cpu/src/minipt run --config inputs/experiments/nope.toml"), "does not exist"),
    (block("run/mpirun -n 4 build/cpu/src/minipt run --config inputs/experiments/demo.toml \\",
           "    --set run.nope=1"), "'run.nope' is not a key"),
    (block("build/cpu/src/minipt simulate --ranks 8 --bogus 1"), "minipt has no option --bogus"),
    (block("run/suite/run.py small --copy 2"), "run/suite/run.py has no option --copy"),
    (block("run/suite/run.py small --set model.layrs=2"), "'model.layrs' is not a key"),
    (block("minipt-analyze summary out/a.h5 --fromat csv"), "has no option --fromat"),
    (block("minipt-analyze sumary out/a.h5"), "has no command"),
    (block("run/demo.sh run.stepz=2"), "'run.stepz' is not a key"),
    (block("run/bench/no-such-script 4"), "does not exist"),
    (block("EXTRA_SET=\"--set model.scal=0.001\" run/bench/odc-vs-fsdp 4"), "'model.scal'"),
    (block("build/gpu/src/minipt --help"), "not a build product"),
])
def test_checker_rejects_made_up_paths_and_keys(text, expected):
    problems, count = check_markdown(text)
    assert count == 1
    assert any(expected in p for p in problems), problems


def test_checker_accepts_outputs_and_build_products():
    problems, count = check_markdown(block(
        "mkdir -p out",
        "run/mpirun -n 2 build/cpu/src/minipt run --config inputs/experiments/demo.toml "
        "--set run.mode=odc --out results/odc.h5   # an output may go anywhere",
        "minipt-analyze timeline out/a.h5 out/b.h5 --step 2 -o out/t.png"))
    assert count == 3 and problems == [], problems


def test_unclosed_fence_is_reported():
    with pytest.raises(AssertionError, match="never closes"):
        shell_blocks("```bash\nrun/demo.sh\n")
