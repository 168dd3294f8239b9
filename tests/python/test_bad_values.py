"""Every configuration key of `minipt --help`, given values it must refuse: a value of the
wrong type, one just outside its allowed range, a non-finite float, a choice that is not
offered. Each is one clear error naming the key (and the allowed values for ranges and
choices), exit code 2 within bad_input.TIME_LIMIT_S, and no file left in the working
directory. Generated from --help, so a new key gets its cases by itself."""

import math
import os
import re

import pytest

import minipt_runner as mr
from bad_input import TIME_LIMIT_S

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")


def help_keys():
    if mr.skip_reason() is not None:
        return []
    text = mr.run_minipt(["--help"], check=True).stdout
    keys = []
    for m in re.finditer(r"^  ([a-z_]+\.[a-z_]+) \(([^)]+)\) = (.*?)(?:   allowed: (.*))?$",
                         text, re.M):
        keys.append((m.group(1), m.group(2), (m.group(4) or "").strip()))
    return keys


def bad_values(key, typ, allowed):
    """(value, substrings the error must hold) pairs for one key."""
    out = []
    rng = re.fullmatch(r"\[(\S+), (\S+)\]", allowed)
    lo = float(rng.group(1)) if rng else None
    hi = float(rng.group(2)) if rng else None
    ge = re.fullmatch(r">= (\S+)", allowed)
    if ge:
        lo = float(ge.group(1))
    if typ == "integer":
        out.append(("abc", [key, "expected an integer"]))
        out.append(("1.5", [key, "expected an integer"]))
        out.append(("true", [key, "expected an integer"]))
        if lo is not None:
            out.append((str(int(lo) - 1), [key, "allowed"]))
        if hi is not None and hi < 1e15:
            out.append((str(int(hi) + 1), [key, "allowed"]))
    elif typ == "float":
        out.append(("abc", [key]))
        out.append(("nan", [key, "finite"]))
        out.append(("-inf", [key, "finite"]))
        if lo is not None and lo > -1e300:
            out.append((repr(lo - max(1.0, abs(lo))), [key, "allowed"]))
        if hi is not None and math.isfinite(hi) and hi < 1e15:
            out.append((repr(hi * 2 + 1), [key, "allowed"]))
    elif typ in ("bool", "boolean"):
        out.append(("maybe", [key, "true or false"]))
        out.append(("1", [key, "true or false"]))
    elif typ == 'bool/integer/"auto"':  # model.recompute; the demo model has 28 blocks
        for value in ("maybe", "-1", "1.5", "[1]", "nan"):
            out.append((value, [key, 'true, false, a block count 0..model.layers or "auto"']))
        out.append(("29", [key, "model.layers = 28", '0..28 or "auto"']))
    elif typ == "string" and "|" in allowed:
        out.append(("bogus-value", [key, allowed]))
        out.append(("3", [key]))
    return out


CASES = [(key, value, must) for key, typ, allowed in help_keys()
         for value, must in bad_values(key, typ, allowed)]


def test_the_table_is_large():
    assert len(CASES) > 150, len(CASES)


def test_every_key_of_help_is_in_the_table():
    text = mr.run_minipt(["--help"], check=True).stdout
    listed = set(re.findall(r"^  ([a-z_]+\.[a-z_]+) \(", text, re.M))
    assert listed == {k for k, _, _ in help_keys()}


@pytest.mark.parametrize("key,value,must", CASES,
                         ids=["config-%s=%s" % (k, v) for k, v, _ in CASES])
def test_bad_value_is_one_clear_error(key, value, must, tmp_path):
    proc = mr.run_minipt(["plan", "--config", mr.DEMO_CONFIG, "--ranks", "2", "--set",
                          "%s=%s" % (key, value)], cwd=str(tmp_path), timeout=TIME_LIMIT_S)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert lines and lines[0].startswith("minipt: error: "), proc.stderr
    for m in must:
        assert m in lines[0], (m, lines[0])
    assert "BOUND" not in proc.stdout
    assert os.listdir(tmp_path) == [], "bad input left %s" % os.listdir(tmp_path)
