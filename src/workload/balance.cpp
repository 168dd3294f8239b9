// Load balancing of one step: Karmarkar–Karp partitioning across ranks, packing of each
// rank's share into microbatches under a token budget, and the communication-free step
// times that show what a plan costs under fsdp and under odc.
#include <algorithm>
#include <functional>
#include <iterator>
#include <limits>
#include <numeric>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "model/cost_model.hpp"
#include "model/shape.hpp"
#include "workload/balancers.hpp"
#include "workload/packing.hpp"
#include "workload/workload.hpp"

namespace minipt {

int64_t RankPlan::tokens() const {
  int64_t total = 0;
  for (const Microbatch& mb : microbatches) total += mb.tokens;
  return total;
}

double RankPlan::cost() const {
  double total = 0.0;
  for (const Microbatch& mb : microbatches) total += mb.cost;
  return total;
}

// ---------------------------------------------------------------------------------
// Karmarkar–Karp, k-way (the "largest differencing method", Karmarkar & Karp 1982;
// k-way form as described by Korf, "Multi-way number partitioning", IJCAI 2009).
//
// A partial solution is k subsets, kept sorted by descending sum; its spread is
// largest sum − smallest sum. Start with one partial solution per item (the item alone
// in one subset, the other k−1 empty). Repeatedly take the two partial solutions with
// the largest spreads and merge them: subset i of the first joins subset k−1−i of the
// second (largest with smallest), which cancels as much of both spreads as possible.
// The last partial solution is the partition.
//
// With equal counts, the items are sorted and cut into consecutive groups of k; each
// group becomes one partial solution with one item per subset. Every subset of every
// partial solution then holds the same number of items, and merging keeps it so. When
// n is not a multiple of k, zero-cost dummy items pad the last group and are dropped at
// the end, leaving ⌊n/k⌋ or ⌈n/k⌉ items per subset.
// ---------------------------------------------------------------------------------
namespace {

// A subset's items are a singly linked list threaded through one shared `next` array,
// so that merging two subsets is O(1) however many items they hold; a merge of two
// partial solutions then costs O(k log k) for re-sorting its subsets.
constexpr int kNoItem = -1;

struct Subset {
  double sum = 0.0;
  int head = kNoItem;  // first item, or kNoItem if empty
  int tail = kNoItem;  // last item
};

// Only the non-empty subsets are stored (the rest of the k are empty, sum 0), so that the
// n starting solutions of an unequal-count partition take O(n) memory, not O(n·k).
struct PartialSolution {
  std::vector<Subset> subsets;  // the non-empty subsets, descending sum
  uint64_t id = 0;              // creation order: the last tie-breaker
  double spread(size_t k) const {
    return subsets.front().sum - (subsets.size() < k ? 0.0 : subsets.back().sum);
  }
};

// Descending sum; ties broken by the first item, which is unique among non-empty
// subsets: a strict total order, so the outcome is the same with every standard library.
bool by_sum(const Subset& a, const Subset& b) {
  if (a.sum != b.sum) return a.sum > b.sum;
  return a.head < b.head;
}

void sort_subsets(PartialSolution& p) { std::sort(p.subsets.begin(), p.subsets.end(), by_sum); }

// Heap order: the partial solution with the largest spread on top; ties go to the
// larger largest subset, then to the older solution. A strict total order, so the
// sequence of merges is the same with every heap implementation.
bool merged_later(const PartialSolution& a, const PartialSolution& b, size_t k) {
  const double sa = a.spread(k), sb = b.spread(k);
  if (sa != sb) return sa < sb;
  if (a.subsets.front().sum != b.subsets.front().sum)
    return a.subsets.front().sum < b.subsets.front().sum;
  return a.id > b.id;
}

}  // namespace

std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int parts,
                                             bool equal_counts) {
  if (parts < 1) throw std::invalid_argument("karmarkar_karp: parts must be >= 1");
  const auto k = static_cast<size_t>(parts);
  const size_t n = costs.size();
  if (n == 0) return std::vector<std::vector<int>>(k);

  // Items by descending cost, ties by index (deterministic).
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return costs[a] > costs[b]; });

  // Many items per part (unequal counts): each merge costs O(k) once the partial
  // solutions are full, so the n − 1 merges would cost O(n·k). Beyond
  // kExactItemsPerPart items per part, Karmarkar–Karp partitions the largest
  // kExactItemsPerPart·k items and the rest, smallest last, go one by one to the part
  // with the smallest sum (longest-processing-time greedy): each is at most the smallest
  // of the partitioned items, so the spread it can leave is at most the cost of the
  // k·kExactItemsPerPart-th largest item, and the time is O(n log n + n log k).
  constexpr size_t kExactItemsPerPart = 64;
  if (!equal_counts && n > kExactItemsPerPart * k) {
    const size_t m = kExactItemsPerPart * k;
    std::vector<double> head(m);
    for (size_t i = 0; i < m; ++i) head[i] = costs[static_cast<size_t>(order[i])];
    std::vector<std::vector<int>> result = karmarkar_karp(head, parts, false);
    using Load = std::pair<double, size_t>;  // (sum, part): ties go to the lower part
    std::priority_queue<Load, std::vector<Load>, std::greater<>> lightest;
    for (size_t p = 0; p < k; ++p) {
      double sum = 0;
      for (int& item : result[p]) {
        item = order[static_cast<size_t>(item)];
        sum += costs[static_cast<size_t>(item)];
      }
      lightest.emplace(sum, p);
    }
    for (size_t i = m; i < n; ++i) {
      auto [sum, p] = lightest.top();
      lightest.pop();
      const int item = order[i];
      result[p].push_back(item);
      lightest.emplace(sum + costs[static_cast<size_t>(item)], p);
    }
    for (auto& part : result) std::sort(part.begin(), part.end());
    return result;
  }

  // Items n, n+1, ... are the zero-cost dummies that complete the last group.
  const size_t groups = (n + k - 1) / k;
  const size_t slots = equal_counts ? groups * k : n;
  std::vector<int> next(slots, kNoItem);
  const auto single = [&](size_t item, double cost) {
    const int id = static_cast<int>(item);
    return Subset{cost, id, id};
  };

  std::vector<PartialSolution> heap;
  uint64_t next_id = 0;
  if (equal_counts) {
    heap.reserve(groups);
    for (size_t g = 0; g < groups; ++g) {
      PartialSolution p{std::vector<Subset>(k), next_id++};
      for (size_t j = 0; j < k; ++j) {
        const size_t position = g * k + j;
        p.subsets[j] = position < n ? single(static_cast<size_t>(order[position]),
                                             costs[static_cast<size_t>(order[position])])
                                    : single(position, 0.0);
      }
      sort_subsets(p);
      heap.push_back(std::move(p));
    }
  } else {
    heap.reserve(n);
    for (const int item : order)
      heap.push_back(PartialSolution{
          {single(static_cast<size_t>(item), costs[static_cast<size_t>(item)])}, next_id++});
  }

  const auto later = [k](const PartialSolution& a, const PartialSolution& b) {
    return merged_later(a, b, k);
  };
  std::make_heap(heap.begin(), heap.end(), later);
  std::vector<Subset> merged, sums;
  while (heap.size() > 1) {
    std::pop_heap(heap.begin(), heap.end(), later);
    PartialSolution first = std::move(heap.back());
    heap.pop_back();
    std::pop_heap(heap.begin(), heap.end(), later);
    PartialSolution& second = heap.back();
    // The i-th largest subset of `first` takes the i-th smallest of `second` (of all k,
    // the empty ones included). Positions where only `first` is non-empty keep its
    // order, those where only `second` is keep its order reversed, and only the
    // positions where both are (their sums) need sorting; three sorted runs are merged.
    const size_t a = first.subsets.size(), b = second.subsets.size();
    const size_t both_from = k - b;  // second is non-empty from here on
    const size_t only_first = std::min(a, both_from);
    const size_t only_second = k - std::max(a, both_from);
    sums.clear();
    for (size_t i = both_from; i < a; ++i) {
      Subset into = first.subsets[i];
      const Subset& from = second.subsets[k - 1 - i];
      into.sum += from.sum;
      next[static_cast<size_t>(into.tail)] = from.head;
      into.tail = from.tail;
      sums.push_back(into);
    }
    std::sort(sums.begin(), sums.end(), by_sum);
    merged.clear();
    std::merge(
        first.subsets.begin(), first.subsets.begin() + static_cast<std::ptrdiff_t>(only_first),
        second.subsets.begin(), second.subsets.begin() + static_cast<std::ptrdiff_t>(only_second),
        std::back_inserter(merged), by_sum);
    first.subsets.clear();
    std::merge(merged.begin(), merged.end(), sums.begin(), sums.end(),
               std::back_inserter(first.subsets), by_sum);
    first.id = next_id++;
    heap.back() = std::move(first);
    std::push_heap(heap.begin(), heap.end(), later);
  }

  std::vector<std::vector<int>> result(k);
  for (size_t i = 0; i < heap.front().subsets.size(); ++i) {
    for (int item = heap.front().subsets[i].head; item != kNoItem;
         item = next[static_cast<size_t>(item)])
      if (static_cast<size_t>(item) < n) result[i].push_back(item);
    std::sort(result[i].begin(), result[i].end());
  }
  return result;
}

// ---------------------------------------------------------------------------------
// Packing a rank's sequences into microbatches.
// ---------------------------------------------------------------------------------
namespace {

std::string token_budget_message(int64_t length, int step, int64_t budget) {
  return "sequence of length " + std::to_string(length) +
         (step >= 0 ? " in step " + std::to_string(step) : std::string()) +
         " exceeds the token budget " + std::to_string(budget) +
         "; raise balance.token_budget to at least " + std::to_string(length) +
         " or lower workload.max";
}

}  // namespace

Microbatch make_microbatch(std::vector<int> sequences, const StepItems& items) {
  Microbatch mb;
  std::sort(sequences.begin(), sequences.end());
  for (const int s : sequences) {
    mb.tokens += items.lengths[static_cast<size_t>(s)];
    mb.cost += items.costs[static_cast<size_t>(s)];
  }
  mb.sequences = std::move(sequences);
  return mb;
}

namespace {

double max_cost(const std::vector<Microbatch>& mbs) {
  double m = 0.0;
  for (const Microbatch& mb : mbs) m = std::max(m, mb.cost);
  return m;
}

// Karmarkar–Karp on cost into `count` microbatches; fails if one exceeds the budget
// (it balances cost, not tokens, so it can overfill a microbatch).
std::optional<std::vector<Microbatch>> split_karmarkar_karp(const std::vector<int>& sequences,
                                                            int count, const StepItems& items,
                                                            int64_t budget) {
  std::vector<double> local_costs;
  local_costs.reserve(sequences.size());
  for (const int s : sequences) local_costs.push_back(items.costs[static_cast<size_t>(s)]);
  std::vector<Microbatch> result;
  for (const std::vector<int>& part : karmarkar_karp(local_costs, count, false)) {
    std::vector<int> global;
    global.reserve(part.size());
    for (const int i : part) global.push_back(sequences[static_cast<size_t>(i)]);
    result.push_back(make_microbatch(std::move(global), items));
    if (result.back().tokens > budget) return std::nullopt;
  }
  return result;
}

// Longest-processing-time greedy under the budget: sequences by descending cost, each
// into the cheapest microbatch that still has room for it. Fails if none has room.
std::optional<std::vector<Microbatch>> split_greedy(const std::vector<int>& sequences, int count,
                                                    const StepItems& items, int64_t budget) {
  std::vector<int> order = sequences;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return items.costs[static_cast<size_t>(a)] > items.costs[static_cast<size_t>(b)];
  });
  std::vector<std::vector<int>> bins(static_cast<size_t>(count));
  std::vector<double> bin_cost(bins.size(), 0.0);
  std::vector<int64_t> bin_tokens(bins.size(), 0);
  for (const int s : order) {
    const int64_t length = items.lengths[static_cast<size_t>(s)];
    size_t best = bins.size();
    for (size_t b = 0; b < bins.size(); ++b)
      if (bin_tokens[b] + length <= budget && (best == bins.size() || bin_cost[b] < bin_cost[best]))
        best = b;
    if (best == bins.size()) return std::nullopt;
    bins[best].push_back(s);
    bin_cost[best] += items.costs[static_cast<size_t>(s)];
    bin_tokens[best] += length;
  }
  std::vector<Microbatch> result;
  for (std::vector<int>& bin : bins) result.push_back(make_microbatch(std::move(bin), items));
  return result;
}

}  // namespace

// Exactly `count` microbatches (some possibly empty) of balanced cost within the budget,
// or nothing if neither method finds one. Of two feasible splits the one with the
// cheaper most expensive microbatch wins.
std::optional<std::vector<Microbatch>> split_into(const std::vector<int>& sequences, int count,
                                                  const StepItems& items, int64_t budget) {
  auto by_kk = split_karmarkar_karp(sequences, count, items, budget);
  auto by_greedy = split_greedy(sequences, count, items, budget);
  if (by_kk && by_greedy) return max_cost(*by_greedy) < max_cost(*by_kk) ? by_greedy : by_kk;
  return by_kk ? by_kk : by_greedy;
}

// The fewest microbatches a rank's sequences fit in, searched upwards from the token
// lower bound ⌈tokens/budget⌉: first by doubling steps, then by bisection. Each
// sequence alone always fits (lengths were checked) and Karmarkar–Karp into count ≥ n
// parts puts every item alone, so count = n always succeeds. Neither splitter is
// strictly monotone in the count, so the bisection can miss a smaller feasible count
// after a failed one; the split it returns (at the smallest count found) always fits.
std::vector<Microbatch> fewest_microbatches(const std::vector<int>& sequences,
                                            const StepItems& items, int64_t budget) {
  if (sequences.empty()) return {};
  int64_t tokens = 0;
  for (const int s : sequences) tokens += items.lengths[static_cast<size_t>(s)];
  const int all_alone = static_cast<int>(sequences.size());
  const int lower_bound = static_cast<int>(std::max<int64_t>(1, (tokens + budget - 1) / budget));
  std::optional<std::vector<Microbatch>> best = split_into(sequences, lower_bound, items, budget);
  if (best) return std::move(*best);
  // Doubling: a feasible count above the last failure.
  int failed = lower_bound;
  for (int stride = 1; !best; stride *= 2) {
    const int count = std::min(failed + stride, all_alone);
    best = split_into(sequences, count, items, budget);
    if (!best) failed = count;
  }
  // Bisection between the last failure and the smallest success.
  int works = static_cast<int>(best->size());
  while (works - failed > 1) {
    const int middle = failed + (works - failed) / 2;
    auto split = split_into(sequences, middle, items, budget);
    if (split) {
      works = middle;
      best = std::move(split);
    } else {
      failed = middle;
    }
  }
  return std::move(*best);
}

// Packs sequences in the given order, starting a new microbatch whenever the next one
// does not fit: what a plain data loader with a token budget does.
std::vector<Microbatch> pack_in_order(const std::vector<int>& sequences, const StepItems& items,
                                      int64_t budget) {
  std::vector<std::vector<int>> bins;
  int64_t tokens = 0;
  for (const int s : sequences) {
    const int64_t length = items.lengths[static_cast<size_t>(s)];
    if (bins.empty() || tokens + length > budget) {
      bins.emplace_back();
      tokens = 0;
    }
    bins.back().push_back(s);
    tokens += length;
  }
  std::vector<Microbatch> result;
  for (std::vector<int>& bin : bins) result.push_back(make_microbatch(std::move(bin), items));
  return result;
}

void check_token_budget(const std::vector<std::vector<int64_t>>& lengths_per_step,
                        int64_t token_budget) {
  for (size_t step = 0; step < lengths_per_step.size(); ++step)
    for (const int64_t length : lengths_per_step[step])
      if (length > token_budget)
        throw ConfigError("balance.token_budget",
                          token_budget_message(length, static_cast<int>(step), token_budget));
}

StepPlan plan_step(const std::vector<int64_t>& lengths, int world, const BalanceOptions& opt,
                   int step) {
  if (world < 1)
    throw std::invalid_argument("plan_step: world must be >= 1 (got " + std::to_string(world) +
                                ")");
  if (opt.token_budget < 1)
    throw ConfigError("balance.token_budget",
                      "must be >= 1 (got " + std::to_string(opt.token_budget) + ")");
  for (const int64_t length : lengths) {
    if (length < 1)
      throw std::invalid_argument("plan_step: sequence lengths must be >= 1 (got " +
                                  std::to_string(length) + ")");
    if (length > opt.token_budget)
      throw ConfigError("balance.token_budget",
                        token_budget_message(length, step, opt.token_budget));
  }

  if (opt.equal_sequence_counts && lengths.size() % static_cast<size_t>(world) != 0)
    throw ConfigError("balance.equal_counts",
                      "= true needs every rank to get the same number of sequences, but step " +
                          std::to_string(step) + " has " + std::to_string(lengths.size()) +
                          " for " + std::to_string(world) +
                          " ranks (make workload.minibatch_size a multiple of the ranks)");
  StepPlan plan;
  plan.lengths = lengths;
  plan.ranks.resize(static_cast<size_t>(world));
  StepItems items{plan.lengths, {}};
  items.costs.reserve(lengths.size());
  for (const int64_t length : lengths) items.costs.push_back(opt.cost(length));

  // 1. Which rank runs which sequences, in which microbatches: the scheme's row.
  std::vector<std::vector<Microbatch>> per_rank =
      balancers().at(opt.scheme, "balance.scheme").factory(items, world, opt);
  for (size_t r = 0; r < per_rank.size(); ++r) plan.ranks[r].microbatches = std::move(per_rank[r]);

  // 2. Most expensive first (fsdp pairs microbatch i of every rank, so sorting every
  //    rank the same way lines up similar costs), then pad to equal counts.
  size_t most = 0;
  for (RankPlan& rank : plan.ranks) {
    std::stable_sort(rank.microbatches.begin(), rank.microbatches.end(),
                     [](const Microbatch& a, const Microbatch& b) { return a.cost > b.cost; });
    most = std::max(most, rank.microbatches.size());
  }
  if (opt.equal_microbatch_counts)
    for (RankPlan& rank : plan.ranks) rank.microbatches.resize(most);
  return plan;
}

// ---------------------------------------------------------------------------------
// Communication-free step times. A microbatch a rank does not have (or an empty one)
// is timed as t(unit, pass, 0, 0): in fsdp it still joins every collective.
// ---------------------------------------------------------------------------------
namespace {

double sum_of_squares(const Microbatch& mb, const std::vector<int64_t>& lengths) {
  double sum = 0.0;
  for (const int s : mb.sequences) {
    const auto l = static_cast<double>(lengths[static_cast<size_t>(s)]);
    sum += l * l;
  }
  return sum;
}

}  // namespace

double fsdp_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t,
                      int group) {
  const size_t ranks = plan.ranks.size();
  const size_t g = group > 0 ? static_cast<size_t>(group) : ranks;
  size_t count = 0;
  for (const RankPlan& rank : plan.ranks) count = std::max(count, rank.microbatches.size());
  // Each shard group runs at the pace of its slowest rank at every unit; the groups meet
  // at the cross-replica reduction after the last microbatch.
  double slowest_group = 0.0;
  for (size_t first = 0; first < ranks; first += g) {
    const size_t last = std::min(ranks, first + g);
    double total = 0.0;
    for (size_t m = 0; m < count; ++m) {
      std::vector<int64_t> tokens(last - first, 0);
      std::vector<double> sum_sq(last - first, 0.0);
      for (size_t r = first; r < last; ++r) {
        if (m >= plan.ranks[r].microbatches.size()) continue;
        tokens[r - first] = plan.ranks[r].microbatches[m].tokens;
        sum_sq[r - first] = sum_of_squares(plan.ranks[r].microbatches[m], plan.lengths);
      }
      for (int unit = 0; unit < num_units; ++unit)
        for (int pass = 0; pass < num_passes; ++pass) {
          double slowest = 0.0;
          for (size_t r = 0; r < tokens.size(); ++r)
            slowest = std::max(slowest, t(unit, pass, tokens[r], sum_sq[r]));
          total += slowest;
        }
    }
    slowest_group = std::max(slowest_group, total);
  }
  return slowest_group;
}

double odc_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t) {
  double slowest = 0.0;
  for (const RankPlan& rank : plan.ranks) {
    double own = 0.0;
    for (const Microbatch& mb : rank.microbatches) {
      const double sum_sq = sum_of_squares(mb, plan.lengths);
      for (int unit = 0; unit < num_units; ++unit)
        for (int pass = 0; pass < num_passes; ++pass) own += t(unit, pass, mb.tokens, sum_sq);
    }
    slowest = std::max(slowest, own);
  }
  return slowest;
}

UnitTimeFn flops_unit_time(const ModelShape& shape, double peak_flops) {
  if (!(peak_flops > 0.0)) throw std::invalid_argument("flops_unit_time: peak_flops must be > 0");
  return [shape, peak_flops](int unit, int pass, int64_t tokens, double sum_sq) {
    if (pass < 0 || pass > 2) throw std::out_of_range("flops_unit_time: pass must be 0, 1 or 2");
    return flops_unit_seconds(shape, unit, pass, tokens, sum_sq, peak_flops * 1e-12);
  };
}

}  // namespace minipt
