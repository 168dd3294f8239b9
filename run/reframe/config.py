"""ReFrame configuration of a local machine for run/reframe/minipt_check.py: one system
"minipt-local" (any host name), one partition "cpu" that runs jobs as local processes.
A centre adds its own system and partitions here, or passes its site configuration
with a second -C (README.md)."""

site_configuration = {
    "systems": [
        {
            "name": "minipt-local",
            "descr": "this machine, jobs as local processes (CI, workstations)",
            "hostnames": [".*"],
            "modules_system": "nomod",
            # stage/, output/ and perflogs/ under the git-ignored out/ (from the repository
            # root; --prefix elsewhere).
            "prefix": "out/reframe",
            "partitions": [
                {
                    "name": "cpu",
                    "descr": "local CPU cores; the suite starts its ranks with mpirun",
                    "scheduler": "local",
                    "launcher": "local",
                    "environs": ["builtin"],
                    "max_jobs": 1,
                }
            ],
        }
    ],
    "environments": [{"name": "builtin", "cc": "cc", "cxx": "c++", "ftn": ""}],
}
