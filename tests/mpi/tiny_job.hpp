// The small job the MPI tests train: a 2-block model of hidden 32 on 12 lognormal
// sequences of 8-160 tokens a step, microbatches of at most 256 tokens, timed at a peak
// high enough that the emulated backend spends almost nothing. Each test adds its mode,
// scheme, steps and transports to these `--set` overrides.
#pragma once

#include <string>
#include <vector>

namespace minipt::test {

inline std::vector<std::string> tiny_job_overrides() {
  return {"workload.distribution=lognormal",
          "workload.mean=48",
          "workload.min=8",
          "workload.max=160",
          "workload.minibatch_size=12",
          "balance.token_budget=256",
          "model.layers=2",
          "model.hidden=32",
          "model.heads=4",
          "model.kv_heads=2",
          "model.ffn=64",
          "model.vocab=97",
          "compute.peak_tflops=1000000",
          "run.out=unused.h5"};
}

}  // namespace minipt::test
