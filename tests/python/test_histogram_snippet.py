"""The histogram recipe of inputs/workloads/README.md works: its first Python block turns a
list of sequence lengths into a file that `minipt plan` draws from, and workload.tail = drop
skips the rows above workload.max as the README says."""

import os
import re

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(mr.skip_reason() is not None, reason=mr.skip_reason() or "")

README = os.path.join(mr.INPUTS, "workloads", "README.md")


def snippet():
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- histogram-snippet[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert m, "the histogram snippet block is missing from " + README
    return m.group(1)


def test_snippet_writes_a_histogram_minipt_plans_from(tmp_path):
    scope = {}
    exec(snippet(), scope)  # defines write_length_histogram
    # A "tokenized data set": 3 sequences of 900 tokens, 1 of 2000, 2 of 70000 (too long).
    lengths = [900, 2000, 900, 70000, 900, 70000, 0]
    path = tmp_path / "lengths.csv"
    scope["write_length_histogram"](lengths, str(path))
    assert path.read_text() == "length,count\n900,3\n2000,1\n70000,2\n"
    cfg = tmp_path / "hist.toml"
    cfg.write_text('[workload]\ndistribution = "histogram"\nhistogram_file = "lengths.csv"\n'
                   'min = 2\nmax = 65536\ntail = "drop"\n')
    proc = mr.run_minipt(["plan", "--config", mr.DEMO_CONFIG, "--config", str(cfg), "--ranks",
                          "2", "--set", "run.steps=2"], check=True)
    drawn = {int(t) for line in proc.stdout.splitlines() if "tokens per microbatch:" in line
             for t in line.split("tokens per microbatch:")[1].split()}
    # Microbatches hold 900s and 2000s (packed), never a 70000.
    assert drawn and all(any((t - 2000 * b) % 900 == 0 for b in range(t // 2000 + 1))
                         for t in drawn), drawn
    assert max(drawn) <= 65536
    # With clamp the same file is bad input naming the row.
    proc = mr.run_minipt(["plan", "--config", mr.DEMO_CONFIG, "--config", str(cfg), "--ranks",
                          "2", "--set", "workload.tail=clamp"])
    assert proc.returncode == 2 and "workload.histogram_file" in proc.stderr, proc.stderr
