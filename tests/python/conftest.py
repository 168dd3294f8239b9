"""Shared pytest fixtures.

The analysis package is imported from the source tree (analysis/), so the tests run
whether or not `pip install -e analysis` was done.
"""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANALYSIS_DIR = os.path.join(REPO_ROOT, "analysis")
if ANALYSIS_DIR not in sys.path:
    sys.path.insert(0, ANALYSIS_DIR)


def minipt_bin():
    """Path of the minipt executable from MINIPT_BIN, or None when unset or missing."""
    path = os.environ.get("MINIPT_BIN")
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.fixture
def analysis_env():
    """Environment for running `python -m minipt_analysis` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ANALYSIS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return env
