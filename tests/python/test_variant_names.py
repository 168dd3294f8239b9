"""Choices with fixed values (parallel.replica_reduce, comm.odc_pull, compute.attention,
compute.emulate, balance schemes and refinement, transports, kernel tuning) are resolved to
types or table rows when the configuration is loaded (src/config) or by the registries
(src/comm, src/core/registry.hpp): the trainer, the simulator and the commands compare no
string against a variant's name, `auto` included. comm owns the transports: it includes
no header of the CUDA compute backend, and the trainer chooses no transport."""

import os
import re

import minipt_runner as mr

SRC = os.path.join(mr.REPO_ROOT, "src")
# `x == "name"` or `"name" == x`.
COMPARISON = re.compile(r'==\s*"([^"\\]*)"|"([^"\\]*)"\s*==')
# CLI parsing compares subcommand names: those are no variants.
COMMAND_NAMES = {"help", "version", "run", "plan", "simulate", "calibrate"}


def sources(*layers):
    for layer in layers:
        for root, _, files in os.walk(os.path.join(SRC, layer)):
            for name in sorted(files):
                if name.endswith((".cpp", ".hpp", ".cu", ".cuh")):
                    yield os.path.join(root, name)


def name_comparisons(text, allowed=frozenset()):
    """(line number, literal) of every comparison against a string literal not in allowed."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("//", 1)[0]
        for m in COMPARISON.finditer(code):
            literal = m.group(1) if m.group(1) is not None else m.group(2)
            if literal not in allowed:
                found.append((number, literal))
    return found


def test_the_check_finds_comparisons_against_names():
    snippet = ('  o.pull_by_kernel = cfg.comm.odc_pull == "kernel";\n'
               '  if ("auto" == collectives) pick();\n'
               '  if (cl.command == "help") return cl;\n'
               '  // a comment: x == "step"\n'
               '  const bool on = refine == BalanceRefine::on;\n')
    assert name_comparisons(snippet, COMMAND_NAMES) == [(1, "kernel"), (2, "auto")]


def test_train_sim_and_app_compare_no_variant_names():
    bad = []
    for path in sources("train", "sim", "app"):
        allowed = COMMAND_NAMES if os.sep + "app" + os.sep in path else frozenset()
        with open(path, encoding="utf-8") as f:
            for number, literal in name_comparisons(f.read(), allowed):
                bad.append(f"{os.path.relpath(path, mr.REPO_ROOT)}:{number}: == \"{literal}\"")
    assert not bad, ("resolve these choices when the configuration is loaded (src/config) "
                     "or through a registry:\n" + "\n".join(bad))


def test_comm_includes_no_cuda_compute_header():
    bad = []
    for path in sources("comm"):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if re.match(r'\s*#\s*include\s*"compute/cuda/', line):
                    bad.append(f"{os.path.relpath(path, mr.REPO_ROOT)}:{number}: {line.strip()}")
    assert not bad, "comm reaches the device through Device (compute/backend.hpp):\n" + "\n".join(bad)


def test_the_trainer_chooses_no_transport():
    with open(os.path.join(SRC, "train", "trainer.cpp"), encoding="utf-8") as f:
        text = f.read()
    for word in ("pick_auto", "collective_transports()", "onesided_transports()",
                 "MPI_Comm_split_type", "node_layout("):
        assert word not in text, f"train/trainer.cpp: {word} belongs in comm/topology.cpp"
