// The balancing schemes: one row each in balancers() (balancers.cpp). A row splits one
// step's sequences over the ranks and packs each rank's share into microbatches;
// plan_step checks the input, sorts each rank's microbatches by cost and pads counts.
// A new scheme is its own file (its split) plus one row.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/registry.hpp"
#include "workload/packing.hpp"
#include "workload/workload.hpp"

namespace minipt {

struct BalancerRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;  // no `auto`
  // Its ranks may run different numbers of microbatches, which only odc allows (fsdp
  // pairs microbatch i of every rank in one collective).
  bool odc_only = false;
  // plan_step keeps the row's microbatch order instead of sorting by descending cost.
  bool keeps_order = false;
  // Rank r's microbatches, for r in [0, world).
  std::function<std::vector<std::vector<Microbatch>>(const StepItems&, int world,
                                                     const BalanceOptions&)>
      factory{};
};

Registry<BalancerRow>& balancers();  // balance.scheme

// The rows the step-time bound plans each mode with (step/run_plan.hpp): fsdp's
// equal-count micro, odc's mini.
inline constexpr const char* kBoundSchemeFsdp = "micro";
inline constexpr const char* kBoundSchemeOdc = "mini";

// The rows' splits that live in files of their own.
std::vector<std::vector<Microbatch>> arrival_order(const StepItems& items, int world,
                                                   const BalanceOptions& opt);  // arrival.cpp

}  // namespace minipt
