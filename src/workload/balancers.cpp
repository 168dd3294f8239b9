// The balancing scheme table (what each scheme does: workload.hpp, plan_step).
#include "workload/balancers.hpp"

#include <algorithm>
#include <optional>

#include "core/parallel.hpp"

namespace minipt {

namespace {

using Shares = std::vector<std::vector<int>>;
using PerRank = std::vector<std::vector<Microbatch>>;

// fn(r) for r in [0, n): on several threads when the step is large (each rank's packing
// is independent of the others', so the plan is the same however many threads run).
template <class Fn>
void for_each_rank(size_t n, size_t sequences, Fn&& fn) {
  constexpr size_t kThreadedFrom = 4096;  // sequences in the step
  for_each_index(n, sequences >= kThreadedFrom, fn);
}

// Rank r takes sequences r, r + world, ... (a plain data loader).
Shares round_robin(size_t sequences, int world) {
  Shares shares(static_cast<size_t>(world));
  for (size_t s = 0; s < sequences; ++s)
    shares[s % static_cast<size_t>(world)].push_back(static_cast<int>(s));
  return shares;
}

PerRank none(const StepItems& items, int world, const BalanceOptions& opt) {
  PerRank out;
  for (const auto& share : round_robin(items.lengths.size(), world))
    out.push_back(pack_in_order(share, items, opt.token_budget));
  return out;
}

// The reference's LocalSort: each rank's round-robin share, shortest first, one
// sequence per microbatch (the row keeps this order: keeps_order).
PerRank localsort(const StepItems& items, int world, const BalanceOptions&) {
  PerRank out;
  for (auto& share : round_robin(items.lengths.size(), world)) {
    std::stable_sort(share.begin(), share.end(), [&](int a, int b) {
      return items.lengths[static_cast<size_t>(a)] < items.lengths[static_cast<size_t>(b)];
    });
    std::vector<Microbatch> mbs;
    for (const int s : share) mbs.push_back(make_microbatch({s}, items));
    out.push_back(std::move(mbs));
  }
  return out;
}

// minipt's earlier LocalSort: the share longest first, packed in order under the budget.
PerRank localsort_packed(const StepItems& items, int world, const BalanceOptions& opt) {
  PerRank out;
  for (auto& share : round_robin(items.lengths.size(), world)) {
    std::stable_sort(share.begin(), share.end(), [&](int a, int b) {
      return items.lengths[static_cast<size_t>(a)] > items.lengths[static_cast<size_t>(b)];
    });
    out.push_back(pack_in_order(share, items, opt.token_budget));
  }
  return out;
}

// Beyond this many sequences per rank, mini does not try the equal-count partition:
// there Karmarkar–Karp with free counts places the tail greedily (balance.cpp,
// kExactItemsPerPart), which leaves a spread of at most one small sequence's cost, and a
// second full partition would cost the planner's scaling benchmark (1M sequences on 1,024
// ranks) about 15% more time (at that size it was kept, and its plan was 0.3 ms in 351 s
// slower).
constexpr size_t kEqualCountTriedUpTo = 64;

// Beyond this many sequences per rank, no swap refinement: shares that large are balanced
// to within one small sequence already (on the scaling benchmark, 977 sequences a rank,
// the refinement made 1,346 exchanges and changed odc's modelled step by 0.015%, for 10%
// more planner time). Post-training steps hold a few to a few dozen per rank.
constexpr size_t kRefinedUpTo = 256;

// The rank partition of micro (equal counts) and mini: Karmarkar–Karp, then with
// opt.refine (up to kRefinedUpTo sequences per rank) the swap refinement; for free counts
// (up to kEqualCountTriedUpTo per rank) the refined equal-count partition too, kept when
// its spread is smaller and its heaviest rank no heavier (never a worse partition on
// either measure).
Shares rank_partition(const StepItems& items, int world, bool equal_counts,
                      const BalanceOptions& opt) {
  Shares shares = karmarkar_karp(items.costs, world, equal_counts);
  const size_t per_rank = items.costs.size() / static_cast<size_t>(world);
  if (!opt.refine || per_rank > kRefinedUpTo) return shares;
  refine_partition(shares, items.costs);
  if (equal_counts || per_rank > kEqualCountTriedUpTo) return shares;
  Shares equal = karmarkar_karp(items.costs, world, true);
  refine_partition(equal, items.costs);
  const auto [hi, lo] = partition_extremes(shares, items.costs);
  const auto [equal_hi, equal_lo] = partition_extremes(equal, items.costs);
  if (equal_hi - equal_lo < hi - lo && equal_hi <= hi) return equal;
  return shares;
}

PerRank mini(const StepItems& items, int world, const BalanceOptions& opt) {
  const Shares shares = rank_partition(items, world, opt.equal_sequence_counts, opt);
  PerRank out(shares.size());
  for_each_rank(shares.size(), items.lengths.size(), [&](size_t r) {
    out[r] = fewest_microbatches(shares[r], items, opt.token_budget);
  });
  return out;
}

// LB-Micro: every rank runs k = max_r (fewest microbatches of rank r), its sequences
// re-spread over exactly k microbatches of balanced cost. A split into more parts is not
// always found even when a split into fewer was (neither Karmarkar–Karp nor the greedy
// is monotone in the count), so a rank that fails at k takes the largest count below k
// that works and is padded with empty microbatches up to k. Rank r's own fewest count
// always works, so this ends.
PerRank micro(const StepItems& items, int world, const BalanceOptions& opt) {
  const Shares shares = rank_partition(items, world, /*equal_counts=*/true, opt);
  PerRank fewest(shares.size());
  for_each_rank(shares.size(), items.lengths.size(), [&](size_t r) {
    fewest[r] = fewest_microbatches(shares[r], items, opt.token_budget);
  });
  size_t k = 0;
  for (const auto& f : fewest) k = std::max(k, f.size());
  PerRank out(shares.size());
  for_each_rank(shares.size(), items.lengths.size(), [&](size_t r) {
    std::optional<std::vector<Microbatch>> split =
        largest_split_into(shares[r], static_cast<int>(k), static_cast<int>(fewest[r].size()),
                           items, opt.token_budget);
    out[r] = split ? std::move(*split) : std::move(fewest[r]);
    out[r].resize(k);
  });
  return out;
}

}  // namespace

Registry<BalancerRow>& balancers() {
  static Registry<BalancerRow> table = [] {
    Registry<BalancerRow> t;
    t.add({.name = "none", .description = "round-robin, packed in order", .factory = none});
    t.add({.name = "micro",
           .description = "LB-Micro: Karmarkar-Karp with equal counts, equal microbatch counts",
           .factory = micro});
    t.add({.name = "mini",
           .description = "LB-Mini: Karmarkar-Karp on whole-step cost (odc only)",
           .odc_only = true,
           .factory = mini});
    t.add({.name = "localsort",
           .description = "the reference's LocalSort (the paper's collective baseline): "
                          "round-robin share, shortest first, one sequence per microbatch",
           .keeps_order = true,
           .factory = localsort});
    t.add({.name = "arrival",
           .description = "no balancing: round-robin share, one sequence per microbatch in "
                          "arrival order (the paper's RL baseline without balancing)",
           .keeps_order = true,
           .factory = arrival_order});
    t.add({.name = "localsort-packed",
           .description = "round-robin share, longest first, packed in order under the "
                          "token budget",
           .factory = localsort_packed});
    return t;
  }();
  return table;
}

}  // namespace minipt
