"""run/bench/step_summary.py: the step benchmark's table from its log, best minipt
configuration per microbatch set against the best PyTorch variant, both MFU conventions."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "run" / "bench" / "step_summary.py"

LOG = """\
NVIDIA H200, 1980 MHz, 700.00 W
PERFORMANCE cuda-cudnn c16k tokens_per_s 34000 mfu 0.4600 step_s 1.9 tokens 65536 peak_tflops 989 mem_used_gib 46.80 loss 12.0 mfu_full 0.5600 recompute 28
PERFORMANCE cuda-cudnn c16k tokens_per_s 37000 mfu 0.5000 step_s 1.7 tokens 65536 peak_tflops 989 mem_used_gib 70.10 loss 12.0 mfu_full 0.6100 recompute 0
PERFORMANCE torch c16k tokens_per_s 20000 mfu 0.2700 step_s 3.2 tokens 65536 peak_tflops 989 mem_peak_gib 40.00 loss 12.0 mode eager mfu_full 0.3300 attention varlen
PERFORMANCE torch c16k tokens_per_s 25600 mfu 0.3500 step_s 2.5 tokens 65536 peak_tflops 989 mem_peak_gib 41.00 loss 12.0 mode torch.compile(dynamic) mfu_full 0.4200 attention cudnn
PERFORMANCE cuda-cudnn 64k tokens_per_s 30000 mfu 0.4700 step_s 4.3 tokens 131072 peak_tflops 989 mem_used_gib 120.00 loss 12.0 mfu_full 0.6000 recompute 9
"""


def test_best_against_best_per_set(tmp_path):
    log = tmp_path / "step.log"
    log.write_text(LOG)
    out = subprocess.run([sys.executable, str(SCRIPT), str(log)], check=True,
                         capture_output=True, text=True).stdout
    best = [l for l in out.splitlines() if l.startswith("c16k") and "ratio" not in l][-1]
    # 37000 / 25600: the recompute-off row against the cuDNN compiled row.
    assert "recompute=0" in best and "torch cudnn torch.compile(dynamic)" in best, out
    assert best.split()[-1] == "1.45", best
    assert "61.0%" in out and "42.0%" in out  # the full-attention convention is shown
    # A set without a PyTorch row has no ratio line.
    assert not [l for l in out.splitlines()[-3:] if l.startswith("64k")], out
