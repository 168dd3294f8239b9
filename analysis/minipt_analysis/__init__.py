"""Analysis of minipt HDF5 timelines: metrics, tables, figures, traces and reports.

    from minipt_analysis import Run, compute_metrics
    run = Run("out/odc.h5")
    m = compute_metrics(run)
    print(m.tokens_per_s, m.utilization_per_rank)
"""

from .metrics import RunMetrics, check_against_summary, compute_metrics
from .runfile import AnalysisError, Run

__all__ = ["AnalysisError", "Run", "RunMetrics", "check_against_summary", "compute_metrics"]
__version__ = "0.1.0"
