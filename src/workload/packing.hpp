// Building blocks of the balancing schemes (balancers.cpp): one step's sequences with
// their costs, and the ways of packing a rank's share into microbatches under the
// token budget.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "workload/workload.hpp"

namespace minipt {

struct StepItems {
  const std::vector<int64_t>& lengths;
  std::vector<double> costs;  // per sequence of the step
};

// The microbatch of `sequences` (indices into items; stored sorted).
Microbatch make_microbatch(std::vector<int> sequences, const StepItems& items);

// Exactly `count` microbatches (some possibly empty) of balanced cost within the budget
// (Karmarkar–Karp on cost, or greedy cheapest-bin-with-room, whichever has the cheaper
// most expensive microbatch), or nothing if neither fits.
std::optional<std::vector<Microbatch>> split_into(const std::vector<int>& sequences, int count,
                                                  const StepItems& items, int64_t budget);

// The fewest microbatches the sequences fit in, searched upwards from ⌈tokens/budget⌉,
// each split balancing cost as split_into does (beyond 256 sequences the search asks the
// greedy split alone, and split_into is made at the count found).
std::vector<Microbatch> fewest_microbatches(const std::vector<int>& sequences,
                                            const StepItems& items, int64_t budget);

// The split into the largest count in (above, count] that fits, as split_into makes
// it, or nothing if none does (the splitters are not monotone in the count).
std::optional<std::vector<Microbatch>> largest_split_into(const std::vector<int>& sequences,
                                                          int count, int above,
                                                          const StepItems& items, int64_t budget);

// Swap refinement of a partition of items (ids into `costs`) into parts, in place
// (refine.cpp has the rules): repeated one-for-one exchanges between the heaviest or the
// lightest part and another, each moving two part sums strictly closer together, until
// none is left. The largest part sum never rises, the smallest never falls, every part
// keeps its count; a part that an exchange touched comes back with its ids sorted, the
// others as they were. Returns the number of exchanges.
size_t refine_partition(std::vector<std::vector<int>>& parts, const std::vector<double>& costs);

// The largest and smallest part sums of a partition (0, 0 for no parts).
std::pair<double, double> partition_extremes(const std::vector<std::vector<int>>& parts,
                                             const std::vector<double>& costs);

// In the given order, a new microbatch whenever the next sequence does not fit (what a
// plain data loader with a token budget does).
std::vector<Microbatch> pack_in_order(const std::vector<int>& sequences, const StepItems& items,
                                      int64_t budget);

}  // namespace minipt
