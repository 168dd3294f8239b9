// The balancing scheme `arrival`: no balancing at all, the baseline of the paper's RL
// comparison in place of verl's own. Rank r takes sequences r, r + world, ... (a plain
// data loader) and runs each as its own microbatch, in the order they arrived.
#include "workload/balancers.hpp"

namespace minipt {

std::vector<std::vector<Microbatch>> arrival_order(const StepItems& items, int world,
                                                   const BalanceOptions&) {
  std::vector<std::vector<Microbatch>> out(static_cast<size_t>(world));
  for (size_t s = 0; s < items.lengths.size(); ++s)
    out[s % static_cast<size_t>(world)].push_back(make_microbatch({static_cast<int>(s)}, items));
  return out;
}

}  // namespace minipt
