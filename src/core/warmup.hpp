// The warm-up rule: which steps of a run its figures count (run.warmup_steps). Every
// place that needs it (the summary, the waits, the report, `minipt plan`'s bound, the
// run plan, calibrate) asks this function; analysis/ reads the same rule from a file's
// warmup_steps attribute (metrics.first_measured_step).
#pragma once

namespace minipt {

// The first measured step of a run of `steps` steps after `warmup` warm-up steps:
// `warmup`, or 0 (every step is measured) when the run has no step beyond the warm-up (a
// configuration cannot ask for that, run.warmup_steps < run.steps, but a timeline of an
// interrupted run or one made elsewhere can hold fewer steps). Step s is measured when
// s >= first_measured_step(warmup, steps); steps - first_measured_step(...) are.
constexpr int first_measured_step(int warmup, int steps) { return warmup < steps ? warmup : 0; }

}  // namespace minipt
