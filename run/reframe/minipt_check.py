"""ReFrame check of minipt's standard problems (run/reframe/README.md).

    reframe -C run/reframe/config.py -c run/reframe/minipt_check.py -r --performance-report

A run-only test: the job runs run/suite/run.py once (one task, the local launcher), which
starts every fsdp and odc run of the problem itself with its --launcher (default
`mpirun -n {ranks}`; under Slurm e.g. -S launcher='srun --mpi=pmix -n {ranks}'); the job
asks for the problem's ranks (x copies) so its allocation holds them.

Sanity: every run's log ends with VERIFICATION PASSED (2 x 5 repetitions x copies), the
suite printed its figure of merit (so the modes agreed), and nothing FAILED; with
require_stable (default) the result must also be stable (spread within the problem's
limit). Performance: figure_of_merit (useful tokens/s per GPU, the slowest copy's in
throughput mode) and odc_over_fsdp, against per-problem, per-system references below.

Variables (-S NAME=VALUE): problem (small, medium, large), launcher, copies, minipt (the
executable; default this tree's build/cpu or build/cuda), steps (0 = the problem's; CI
uses 2, which is not a standard result), require_stable.
"""

import os

import reframe as rfm
import reframe.utility.sanity as sn
import reframe.utility.typecheck as typ
from reframe.core.backends import getlauncher
from reframe.core.builtins import (performance_function, run_after, run_before,
                                   sanity_function, variable)

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHAPES = {"small": (1, 4), "medium": (1, 8), "large": (4, 8)}  # nodes, ranks per node

# References per problem, then per system:partition (ReFrame's reference format:
# (value, lower, upper, unit), the bounds relative). A centre adds its partition here,
# e.g. "jupiter:booster": {...}, after a baseline run (README.md).
REFERENCES = {
    "small": {
        # The 2-core CI machine (shared, loaded: wide bounds). Measured 2026-12-07 with
        # run/jube and this check: 204,000-215,000 tokens/s/GPU, odc/fsdp 1.29-1.36.
        "minipt-local:cpu": {"figure_of_merit": (205000.0, -0.35, None, "tokens/s/GPU"),
                             "odc_over_fsdp": (1.30, -0.15, 0.25, "x")},
    },
    "medium": {},
    "large": {},
}
# Every other system: reported, not judged; odc must not lose to fsdp by more than 5 %.
ANY = {"figure_of_merit": (0.0, None, None, "tokens/s/GPU"),
       "odc_over_fsdp": (1.0, -0.05, None, "x")}


def default_minipt():
    for preset in ("cuda", "cpu"):
        path = os.path.join(ROOT, "build", preset, "src", "minipt")
        if os.access(path, os.X_OK):
            return path
    return "minipt"


@rfm.simple_test
class MiniptSuiteCheck(rfm.RunOnlyRegressionTest):
    descr = "minipt standard problem: fsdp+LB-Micro vs odc+LB-Mini, useful tokens/s per GPU"
    valid_systems = ["*"]
    valid_prog_environs = ["*"]
    maintainers = ["minipt"]
    tags = {"minipt", "benchmark", "suite", "mpi"}
    problem = variable(str, value="small")
    launcher = variable(str, value="mpirun -n {ranks}")
    copies = variable(int, value=1)
    minipt = variable(str, value=default_minipt())
    steps = variable(int, value=0)
    require_stable = variable(typ.Bool, value=True)
    executable = os.path.join(ROOT, "run", "suite", "run.py")
    time_limit = "30m"
    # Kept in the output directory of a passed test (its stage directory is removed).
    keep_files = ["suite/suite.json", "suite/report.md"]

    @run_after("init")
    def set_shape(self):
        if self.problem not in SHAPES:
            raise ValueError("problem: unknown problem '%s' (allowed: %s)" %
                             (self.problem, ", ".join(SHAPES)))
        self.tags = self.tags | {self.problem}
        nodes, per_node = SHAPES[self.problem]
        self.num_tasks = nodes * per_node * self.copies
        self.num_tasks_per_node = per_node * (self.copies if nodes == 1 else 1)
        self.reference = dict(REFERENCES[self.problem], **{"*": ANY})
        self.executable_opts = [self.problem, "--ranks", str(nodes * per_node), "--copies",
                                str(self.copies), "--out", "suite", "--minipt", self.minipt,
                                "--launcher", "'%s'" % self.launcher]
        if self.steps:
            self.executable_opts += ["--set", "run.steps=%d" % self.steps]

    @run_before("run")
    def run_once(self):
        # run.py starts the MPI jobs itself: the job step is one local process.
        self.job.launcher = getlauncher("local")()

    @sanity_function
    def validate(self):
        logs = sn.glob(os.path.join(self.stagedir, "suite", "**", "*.log"), recursive=True)
        passed = sn.sum(sn.map(lambda f: sn.count(sn.findall(r"^VERIFICATION PASSED$", f)),
                               logs))
        checks = [sn.assert_eq(passed, 10 * self.copies,
                               msg="{0} of {1} runs printed VERIFICATION PASSED"),
                  sn.assert_found(r"^SUITE \S+ figure_of_merit=", self.stdout,
                                  msg="no figure of merit: see suite/report.md"),
                  sn.assert_not_found(r"FAILED", self.stdout, msg="a run or the check FAILED")]
        if self.require_stable:
            checks.append(sn.assert_found(r"^SUITE \S+ figure_of_merit=.* stable=true",
                                          self.stdout, msg="the result is unstable (spread "
                                          "above the problem's limit): see suite/report.md"))
        return sn.all(checks)

    @performance_function("tokens/s/GPU")
    def figure_of_merit(self):
        return sn.extractsingle(r"^SUITE \S+ figure_of_merit=(\S+)", self.stdout, 1, float)

    @performance_function("x")
    def odc_over_fsdp(self):
        return sn.extractsingle(r"^SUITE \S+ figure_of_merit=\S+ mode=\S+ odc_over_fsdp=(\S+)",
                                self.stdout, 1, float)
