"""run/deps.sh is idempotent (issue 30 item 3): with everything present, a second run
installs and downloads nothing. apt-get, pip, curl and wget are replaced by shims that
record the call and fail, so any install or download attempt shows (and breaks the run).
It checks Python modules with the python3 it installs for, and keeps the analysis
package editable from THIS checkout.

Runs deps.sh itself (a few seconds): the CI machine has run it first (run/test.sh).
"""

import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(REPO_ROOT, "run", "deps.sh")

pytestmark = pytest.mark.skipif(shutil.which("python3") is None, reason="no python3 on PATH")

SHIM = """#!/bin/sh
echo "$0 $*" >> "{log}"
echo "shim: $0 $* refused (deps.sh must not install or download here)" >&2
exit 1
"""

# python3 itself passes through, except `python3 -m pip install|download`.
PYTHON_SHIM = """#!/bin/sh
case " $* " in
  *" --help "*) ;;
  *" -m pip install "*|*" -m pip download "*|*" -m pip "*" install "*)
    echo "python3 $*" >> "{log}"
    echo "shim: python3 $* refused" >&2
    exit 1 ;;
esac
exec "{python3}" "$@"
"""


def shimmed_env(tmp_path, pythonpath):
    bindir = tmp_path / "shims"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    log.write_text("")
    for name in ("apt-get", "apt", "pip", "pip3", "curl", "wget", "sudo"):
        (bindir / name).write_text(SHIM.format(log=log))
        (bindir / name).chmod(0o755)
    (bindir / "python3").write_text(PYTHON_SHIM.format(log=log, python3=shutil.which("python3")))
    (bindir / "python3").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
               PYTHONPATH=pythonpath)
    return env, log


def deps(env):
    return subprocess.run(["bash", DEPS], capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO_ROOT)


def test_second_run_installs_and_downloads_nothing(tmp_path):
    # This checkout's analysis package importable (as an editable install of it makes it):
    # nothing left to do.
    env, log = shimmed_env(tmp_path, os.path.join(REPO_ROOT, "analysis"))
    proc = deps(env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out + log.read_text()
    assert log.read_text() == "", "deps.sh tried: " + log.read_text()
    assert "installing" not in out and "unpacking" not in out and "fetching" not in out, out


def test_analysis_from_another_tree_is_replaced_by_this_checkouts(tmp_path):
    other = tmp_path / "other" / "minipt_analysis"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    env, log = shimmed_env(tmp_path, str(other.parent))
    proc = deps(env)
    out = proc.stdout + proc.stderr
    # It saw the other tree and tried the editable install of this checkout (the shim
    # refused it, so deps.sh fails here).
    assert "pip installing the analysis package of this checkout (editable), replacing " \
        "the one in %s" % os.path.realpath(other) in out, out
    assert "-m pip install" in log.read_text() and "-e analysis" in log.read_text()
    assert proc.returncode != 0


def test_modules_are_checked_with_the_python3_that_installs_them():
    # The python3 in use is Debian's only when its prefix is /usr; only then does deps.sh
    # use python3-* packages (which other interpreters cannot import).
    text = open(DEPS).read()
    prefix = subprocess.run(["python3", "-c", "import sys; print(sys.prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    for mod in ("numpy", "h5py", "matplotlib", "pytest", "jsonschema", "wheel"):
        assert subprocess.run(["python3", "-c", "import " + mod]).returncode == 0, (
            "deps.sh has run, yet the python3 in use (%s, prefix %s) cannot import %s" %
            (shutil.which("python3"), prefix, mod))
    assert 'py_debian=1' in text and "sys.prefix" in text
