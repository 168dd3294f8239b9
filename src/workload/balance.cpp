// Load balancing of one step: Karmarkar–Karp partitioning across ranks, packing of each
// rank's share into microbatches under a token budget, and the communication-free step
// times that show what a plan costs under fsdp and under odc.
#include <algorithm>
#include <functional>
#include <iterator>
#include <limits>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "core/parallel.hpp"
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
//
// Cost of a merge. Only the non-empty subsets of a partial solution are stored, and a
// merge changes only the positions where the second one is non-empty (b of them, the
// first one's smallest): those b subsets are summed, sorted and merged into the first
// one's untouched prefix in place, in O(b log b) plus a move of the prefix entries that
// they pass. A merge of two full solutions leaves one fewer full solution's worth of
// subsets, so those cost O(n log k) over the run; the typical merge, a lone item into a
// full solution, is a binary search and a memmove.
// ---------------------------------------------------------------------------------
namespace {

// A subset's items are a singly linked list threaded through one shared `next` array,
// so that merging two subsets is O(1) however many items they hold.
constexpr int kNoItem = -1;

struct Subset {
  double sum = 0.0;
  int64_t tokens = 0;  // the items' tokens, when a token budget is given
  int head = kNoItem;  // first item, or kNoItem if empty
  int tail = kNoItem;  // last item
};

// Descending sum; ties broken by the first item, which is unique among non-empty
// subsets: a strict total order, so the outcome is the same with every standard library.
bool by_sum(const Subset& a, const Subset& b) {
  if (a.sum != b.sum) return a.sum > b.sum;
  return a.head < b.head;
}

// What the heap orders a partial solution by, copied out of it so that the heap moves
// small keys and never touches the subsets.
struct HeapKey {
  double spread = 0.0;
  double largest = 0.0;  // the largest subset's sum
  uint64_t id = 0;       // creation order: the last tie-breaker
  int solution = 0;      // >= 0: pool_[solution]; < 0: the lone item at position −1 − solution
};

// Heap order: the partial solution with the largest spread on top; ties go to the
// larger largest subset, then to the older solution. A strict total order, so the
// sequence of merges is the same with every heap implementation.
bool merged_later(const HeapKey& a, const HeapKey& b) {
  if (a.spread != b.spread) return a.spread < b.spread;
  if (a.largest != b.largest) return a.largest < b.largest;
  return a.id > b.id;
}

// One Karmarkar–Karp run at a time; its buffers are kept for the next run (a rank's
// share is split at several microbatch counts).
class Differencing {
 public:
  // Partitions the items order[0..n) (descending cost; item ids index `costs` and
  // `tokens`) into k subsets. With `tokens`, stops and returns false as soon as a subset
  // holds more than `budget` tokens (subsets only grow, so the partition would too).
  bool run(const std::vector<double>& costs, const std::vector<int64_t>* tokens, int64_t budget,
           const std::vector<int>& order, size_t k, bool equal_counts) {
    k_ = k;
    items_ = order.size();
    const size_t groups = (items_ + k - 1) / k;
    const size_t slots = equal_counts ? groups * k : items_;
    next_.assign(slots, kNoItem);
    heap_.clear();
    free_.clear();
    for (size_t i = 0; i < pool_.size(); ++i) release(static_cast<int>(i));
    const auto single = [&](size_t position) {
      if (position >= items_)
        return Subset{0.0, 0, static_cast<int>(position), static_cast<int>(position)};
      const int item = order[position];
      const auto at = static_cast<size_t>(item);
      return Subset{costs[at], tokens ? (*tokens)[at] : 0, item, item};
    };
    uint64_t next_id = 0;
    if (equal_counts) {
      heap_.reserve(groups);
      for (size_t g = 0; g < groups; ++g) {
        const int p = acquire();
        std::vector<Subset>& subsets = pool_[static_cast<size_t>(p)];
        for (size_t j = 0; j < k; ++j) subsets.push_back(single(g * k + j));
        std::sort(subsets.begin(), subsets.end(), by_sum);
        heap_.push_back(key(p, next_id++));
      }
    } else {
      singles_.resize(items_);
      heap_.reserve(items_);
      for (size_t i = 0; i < items_; ++i) {
        singles_[i] = single(i);
        heap_.push_back(key(-1 - static_cast<int>(i), next_id++));
      }
    }
    std::make_heap(heap_.begin(), heap_.end(), merged_later);
    while (heap_.size() > 1) {
      std::pop_heap(heap_.begin(), heap_.end(), merged_later);
      const HeapKey first = heap_.back();
      heap_.pop_back();
      std::pop_heap(heap_.begin(), heap_.end(), merged_later);
      const int merged = merge(first.solution, heap_.back().solution, tokens != nullptr, budget);
      if (merged == kFailed) return false;
      heap_.back() = key(merged, next_id++);
      std::push_heap(heap_.begin(), heap_.end(), merged_later);
    }
    return true;
  }

  // After a successful run: subset i's items (ids below `real`, the dummies left out),
  // in no particular order.
  std::vector<std::vector<int>> parts(size_t real) const {
    std::vector<std::vector<int>> result(k_);
    if (heap_.empty()) return result;
    const auto [subsets, count] = view(heap_.front().solution);
    for (size_t i = 0; i < count; ++i)
      for (int item = subsets[i].head; item != kNoItem; item = next_[static_cast<size_t>(item)])
        if (static_cast<size_t>(item) < real) result[i].push_back(item);
    return result;
  }

 private:
  static constexpr int kFailed = std::numeric_limits<int>::min();
  // A released subset vector keeps its storage up to this many subsets, so that the
  // kept storage stays O(items) however often full solutions come and go.
  static constexpr size_t kKeptCapacity = 64;

  struct View {
    const Subset* subsets;
    size_t count;
  };
  View view(int solution) const {
    if (solution < 0) return {&singles_[static_cast<size_t>(-1 - solution)], 1};
    const std::vector<Subset>& s = pool_[static_cast<size_t>(solution)];
    return {s.data(), s.size()};
  }

  HeapKey key(int solution, uint64_t id) const {
    const auto [subsets, count] = view(solution);
    const double smallest = count < k_ ? 0.0 : subsets[count - 1].sum;
    return {subsets[0].sum - smallest, subsets[0].sum, id, solution};
  }

  int acquire() {
    if (free_.empty()) {
      pool_.emplace_back();
      return static_cast<int>(pool_.size() - 1);
    }
    const int p = free_.back();
    free_.pop_back();
    return p;
  }

  void release(int p) {
    std::vector<Subset>& s = pool_[static_cast<size_t>(p)];
    if (s.capacity() > kKeptCapacity)
      std::vector<Subset>().swap(s);
    else
      s.clear();
    free_.push_back(p);
  }

  // Merges `second` into `first` (largest subsets with smallest); the merged solution's
  // handle, or kFailed if a subset went over the budget.
  int merge(int first, int second, bool check_tokens, int64_t budget) {
    const auto [f, a] = view(first);
    const auto [s, b] = view(second);
    const size_t both_from = k_ - b;  // second is non-empty from here on
    changed_.clear();
    for (size_t i = both_from; i < k_; ++i) {
      const Subset& from = s[k_ - 1 - i];
      if (i >= a) {
        changed_.push_back(from);
        continue;
      }
      Subset into = f[i];
      into.sum += from.sum;
      into.tokens += from.tokens;
      if (check_tokens && into.tokens > budget) return kFailed;
      next_[static_cast<size_t>(into.tail)] = from.head;
      into.tail = from.tail;
      changed_.push_back(into);
    }
    std::sort(changed_.begin(), changed_.end(), by_sum);
    const size_t kept = std::min(a, both_from);  // first's untouched prefix
    int target = first;
    if (first < 0) {
      target = acquire();
      pool_[static_cast<size_t>(target)].assign(f, f + kept);
    }
    if (second >= 0) release(second);
    std::vector<Subset>& out = pool_[static_cast<size_t>(target)];
    out.resize(kept + changed_.size());
    // From the back: each changed subset, smallest first, goes after the prefix entries
    // it follows; the prefix entries it precedes move up past it.
    size_t write = out.size(), prefix = kept;
    for (size_t c = changed_.size(); c-- > 0;) {
      const Subset& x = changed_[c];
      const auto start =
          std::partition_point(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(prefix),
                               [&](const Subset& y) { return !by_sum(x, y); });
      const auto moved =
          static_cast<size_t>(out.begin() + static_cast<std::ptrdiff_t>(prefix) - start);
      std::move_backward(start, start + static_cast<std::ptrdiff_t>(moved),
                         out.begin() + static_cast<std::ptrdiff_t>(write));
      write -= moved;
      prefix -= moved;
      out[--write] = x;
    }
    return target;
  }

  size_t k_ = 1, items_ = 0;
  std::vector<int> next_;
  std::vector<Subset> singles_;            // the lone items, by position in the order
  std::vector<std::vector<Subset>> pool_;  // the stored partial solutions (non-empty subsets)
  std::vector<int> free_;                  // released entries of pool_
  std::vector<HeapKey> heap_;
  std::vector<Subset> changed_;
};

// Items by descending cost, ties by index (deterministic: a strict total order, so
// std::sort gives what a stable sort by cost would).
std::vector<int> by_descending_cost(const std::vector<double>& costs) {
  std::vector<std::pair<double, int>> keyed(costs.size());  // (cost, item): no indirection
  for (size_t i = 0; i < costs.size(); ++i) keyed[i] = {costs[i], static_cast<int>(i)};
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<int> order(costs.size());
  for (size_t i = 0; i < keyed.size(); ++i) order[i] = keyed[i].second;
  return order;
}

// Many items per part (unequal counts): each merge costs up to O(k) once the partial
// solutions are full, so the n − 1 merges could cost O(n·k). Beyond
// kExactItemsPerPart items per part, Karmarkar–Karp partitions the largest
// kExactItemsPerPart·k items and the rest, smallest last, go one by one to the part
// with the smallest sum (longest-processing-time greedy): each is at most the smallest
// of the partitioned items, so the spread it can leave is at most the cost of the
// k·kExactItemsPerPart-th largest item, and the time is O(n log n + n log k).
constexpr size_t kExactItemsPerPart = 64;

// Replaces the top of a heap ordered by std::greater (the least element) with `value`
// and sifts it down: one pass instead of a pop and a push.
template <class T>
void replace_least(std::vector<T>& heap, const T& value) {
  size_t at = 0;
  for (size_t child = 1; child < heap.size(); child = 2 * at + 1) {
    if (child + 1 < heap.size() && heap[child + 1] < heap[child]) ++child;
    if (!(heap[child] < value)) break;
    heap[at] = heap[child];
    at = child;
  }
  heap[at] = value;
}

// karmarkar_karp on items already ordered (`order`, by_descending_cost), each part's
// items sorted; with `tokens`, nothing if a part would hold more than `budget` tokens.
std::optional<std::vector<std::vector<int>>> partition(const std::vector<double>& costs,
                                                       const std::vector<int64_t>* tokens,
                                                       int64_t budget,
                                                       const std::vector<int>& order, size_t k,
                                                       bool equal_counts, Differencing& kk) {
  const size_t n = order.size();
  if (n == 0) return std::vector<std::vector<int>>(k);
  std::vector<std::vector<int>> result;
  if (!equal_counts && n > kExactItemsPerPart * k) {
    const size_t m = kExactItemsPerPart * k;
    std::vector<double> head(m);
    std::vector<int64_t> head_tokens(tokens ? m : 0);
    for (size_t i = 0; i < m; ++i) {
      head[i] = costs[static_cast<size_t>(order[i])];
      if (tokens) head_tokens[i] = (*tokens)[static_cast<size_t>(order[i])];
    }
    std::vector<int> head_order(m);
    std::iota(head_order.begin(), head_order.end(), 0);
    if (!kk.run(head, tokens ? &head_tokens : nullptr, budget, head_order, k, false))
      return std::nullopt;
    result = kk.parts(m);
    using Load = std::pair<double, size_t>;  // (sum, part): ties go to the lower part
    std::vector<Load> lightest;              // a heap, the least on top
    std::vector<int64_t> part_tokens(k, 0);
    for (size_t p = 0; p < k; ++p) {
      double sum = 0;
      for (int& item : result[p]) {
        const auto i = static_cast<size_t>(item);
        sum += head[i];
        if (tokens) part_tokens[p] += head_tokens[i];
        item = order[i];
      }
      lightest.emplace_back(sum, p);
    }
    std::make_heap(lightest.begin(), lightest.end(), std::greater<Load>());
    for (size_t i = m; i < n; ++i) {
      const auto [sum, p] = lightest.front();
      const int item = order[i];
      result[p].push_back(item);
      if (tokens) {
        part_tokens[p] += (*tokens)[static_cast<size_t>(item)];
        if (part_tokens[p] > budget) return std::nullopt;
      }
      replace_least(lightest, Load{sum + costs[static_cast<size_t>(item)], p});
    }
  } else {
    if (!kk.run(costs, tokens, budget, order, k, equal_counts)) return std::nullopt;
    result = kk.parts(n);
  }
  for (auto& part : result) std::sort(part.begin(), part.end());
  return result;
}

}  // namespace

std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int parts,
                                             bool equal_counts) {
  if (parts < 1) throw std::invalid_argument("karmarkar_karp: parts must be >= 1");
  Differencing kk;
  return *partition(costs, nullptr, 0, by_descending_cost(costs), static_cast<size_t>(parts),
                    equal_counts, kk);
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

// A rank's share, split into any number of microbatches: its costs and tokens gathered
// and its order by descending cost (ties by position) found once for every count tried.
class ShareSplitter {
 public:
  ShareSplitter(const std::vector<int>& sequences, const StepItems& items, int64_t budget)
      : sequences_(sequences), items_(items), budget_(budget) {
    costs_.reserve(sequences.size());
    tokens_.reserve(sequences.size());
    for (const int s : sequences) {
      costs_.push_back(items.costs[static_cast<size_t>(s)]);
      tokens_.push_back(items.lengths[static_cast<size_t>(s)]);
      total_tokens_ += items.lengths[static_cast<size_t>(s)];
    }
    order_ = by_descending_cost(costs_);
    for (size_t i = 1; i < order_.size(); ++i)
      if (tokens_[static_cast<size_t>(order_[i])] > tokens_[static_cast<size_t>(order_[i - 1])])
        longest_first_ = false;
  }

  size_t size() const { return sequences_.size(); }
  int64_t tokens() const { return total_tokens_; }
  int64_t budget() const { return budget_; }

  // split_into (packing.hpp): the cheaper-at-its-most-expensive of the two splits that fit.
  std::optional<std::vector<Microbatch>> split(int count) {
    auto by_kk = karmarkar_karp(count);
    auto by_greedy = greedy(count);
    if (by_kk && by_greedy) return max_cost(*by_greedy) < max_cost(*by_kk) ? by_greedy : by_kk;
    return by_kk ? by_kk : by_greedy;
  }

 private:
  std::vector<Microbatch> microbatches(std::vector<std::vector<int>> parts) const {
    std::vector<Microbatch> result;
    result.reserve(parts.size());
    for (std::vector<int>& part : parts) {
      for (int& i : part) i = sequences_[static_cast<size_t>(i)];
      result.push_back(make_microbatch(std::move(part), items_));
    }
    return result;
  }

  // Karmarkar–Karp on cost into `count` microbatches; fails if one exceeds the budget
  // (it balances cost, not tokens, so it can overfill a microbatch).
  std::optional<std::vector<Microbatch>> karmarkar_karp(int count) {
    auto parts =
        partition(costs_, &tokens_, budget_, order_, static_cast<size_t>(count), false, kk_);
    if (!parts) return std::nullopt;
    std::vector<Microbatch> result = microbatches(std::move(*parts));
    for (const Microbatch& mb : result)
      if (mb.tokens > budget_) return std::nullopt;  // a lone sequence over the budget
    return result;
  }

  // Longest-processing-time greedy under the budget: sequences by descending cost, each
  // into the cheapest microbatch that still has room for it (the lowest-numbered of
  // equally cheap ones). Fails if none has room.
  std::optional<std::vector<Microbatch>> greedy(int count) {
    if (!greedy_fits(count)) return std::nullopt;
    const auto bins = static_cast<size_t>(count);
    std::vector<size_t> sizes(bins, 0);
    for (const size_t b : bin_of_) ++sizes[b];
    std::vector<std::vector<int>> parts(bins);
    for (size_t b = 0; b < bins; ++b) parts[b].reserve(sizes[b]);
    for (size_t i = 0; i < order_.size(); ++i) parts[bin_of_[i]].push_back(static_cast<int>(i));
    return microbatches(std::move(parts));
  }

 public:
  // Whether the greedy split into `count` fits (its bins left in bin_of_).
  //
  // Cost never falls as length grows, so the sequences usually come longest first, and
  // then a bin with room for one sequence has room for every later one: the bins with
  // room are a heap by (cost, bin), which the bins waiting for shorter sequences (a heap
  // by room) join as the lengths fall. The cheapest bin with room is then its top, the
  // same bin a scan finds, in O(log count). A bin left with less room than the shortest
  // sequence is full for good; once such bins' room exceeds the slack
  // (count·budget − tokens), the sequences left cannot all fit and the split fails then.
  // Lengths that do not fall (costs that do not grow with length, e.g. all zero) are
  // scanned.
  bool greedy_fits(int count) {
    const auto bins = static_cast<size_t>(count);
    bin_of_.resize(order_.size());
    bin_cost_.assign(bins, 0.0);
    bin_tokens_.assign(bins, 0);
    if (order_.empty()) return true;
    if (!longest_first_) return greedy_by_scan();
    using Cheapest = std::pair<double, size_t>;   // (cost, bin): the least on top
    using Roomiest = std::pair<int64_t, size_t>;  // (room, bin): the most on top
    if (tokens_[static_cast<size_t>(order_.front())] > budget_) return false;  // fits nowhere
    const int64_t shortest = tokens_[static_cast<size_t>(order_.back())];
    const int64_t slack = static_cast<int64_t>(bins) * budget_ - total_tokens_;
    int64_t lost = 0;  // the room of the bins full for good
    with_room_.clear();
    waiting_.clear();
    // While there are empty bins, the next sequence takes the lowest-numbered (cost 0 is
    // the least when costs are positive): the first `placed` sequences go to bins
    // 0, 1, ... in turn, and the heaps are built once after them.
    const size_t placed =
        costs_[static_cast<size_t>(order_[std::min(bins, order_.size()) - 1])] > 0.0
            ? std::min(bins, order_.size())
            : 0;
    for (size_t b = 0; b < placed; ++b) {
      const auto at = static_cast<size_t>(order_[b]);
      bin_of_[at] = b;
      bin_cost_[b] = costs_[at];
      bin_tokens_[b] = tokens_[at];
      const int64_t room = budget_ - tokens_[at];
      if (room >= shortest)
        waiting_.emplace_back(room, b);
      else
        lost += room;
    }
    if (lost > slack) return false;
    std::make_heap(waiting_.begin(), waiting_.end(), std::less<Roomiest>());
    for (size_t b = placed; b < bins; ++b) with_room_.emplace_back(0.0, b);  // already a heap
    for (size_t next = placed; next < order_.size(); ++next) {
      const auto at = static_cast<size_t>(order_[next]);
      const int64_t length = tokens_[at];
      // The last bin to come back is not pushed: it is taken at once if it is the
      // cheapest, else it replaces the top (one sift-down instead of a push and a pop).
      std::optional<Cheapest> back;
      while (!waiting_.empty() && waiting_.front().first >= length) {
        const size_t b = waiting_.front().second;
        std::pop_heap(waiting_.begin(), waiting_.end(), std::less<Roomiest>());
        waiting_.pop_back();
        if (back) {
          with_room_.push_back(*back);
          std::push_heap(with_room_.begin(), with_room_.end(), std::greater<Cheapest>());
        }
        back = Cheapest{bin_cost_[b], b};
      }
      size_t b = 0;
      if (back && (with_room_.empty() || *back < with_room_.front())) {
        b = back->second;
      } else if (back) {
        b = with_room_.front().second;
        replace_least(with_room_, *back);
      } else {
        if (with_room_.empty()) return false;
        b = with_room_.front().second;
        std::pop_heap(with_room_.begin(), with_room_.end(), std::greater<Cheapest>());
        with_room_.pop_back();
      }
      bin_of_[at] = b;
      bin_cost_[b] += costs_[at];
      bin_tokens_[b] += length;
      const int64_t room = budget_ - bin_tokens_[b];
      if (room < shortest) {
        lost += room;
        if (lost > slack) return false;
        continue;
      }
      waiting_.emplace_back(room, b);
      std::push_heap(waiting_.begin(), waiting_.end(), std::less<Roomiest>());
    }
    return true;
  }

 private:
  // The greedy by a scan of every bin for each sequence: O(n·count).
  bool greedy_by_scan() {
    const size_t bins = bin_cost_.size();
    for (const int i : order_) {
      const auto at = static_cast<size_t>(i);
      size_t best = bins;
      for (size_t b = 0; b < bins; ++b)
        if (bin_tokens_[b] + tokens_[at] <= budget_ &&
            (best == bins || bin_cost_[b] < bin_cost_[best]))
          best = b;
      if (best == bins) return false;
      bin_of_[at] = best;
      bin_cost_[best] += costs_[at];
      bin_tokens_[best] += tokens_[at];
    }
    return true;
  }

  const std::vector<int>& sequences_;
  const StepItems& items_;
  int64_t budget_;
  std::vector<double> costs_;
  std::vector<int64_t> tokens_;
  int64_t total_tokens_ = 0;
  std::vector<int> order_;
  bool longest_first_ = true;  // tokens_ do not grow along order_
  std::vector<size_t> bin_of_;
  std::vector<double> bin_cost_;
  std::vector<int64_t> bin_tokens_;
  std::vector<std::pair<double, size_t>> with_room_;
  std::vector<std::pair<int64_t, size_t>> waiting_;
  Differencing kk_;
};

// The count where the search for the fewest microbatches ends: from `lower_bound`, by
// doubling steps to a count that `fits`, then by bisection between the last failure and
// the smallest success (fewest_microbatches, packing.hpp). `fits` is last called
// successfully with the count returned. `all_alone` (every sequence alone) must fit.
template <class Fits>
int fewest_count(int lower_bound, int all_alone, Fits&& fits) {
  if (fits(lower_bound)) return lower_bound;
  int failed = lower_bound, works = 0;
  for (int stride = 1; works == 0; stride *= 2) {
    const int count = std::min(failed + stride, all_alone);
    if (fits(count))
      works = count;
    else
      failed = count;
  }
  while (works - failed > 1) {
    const int middle = failed + (works - failed) / 2;
    if (fits(middle))
      works = middle;
    else
      failed = middle;
  }
  return works;
}

// Beyond this many sequences in a share, the count is searched with the greedy split
// alone, and both splits are made only at the count found. At that size, the
// microbatches are near the token budget at the counts searched, where Karmarkar–Karp
// (blind to tokens) overfills one: of 1,000,000 LongAlign-like sequences on 1,024
// ranks (977 a share), no search attempt fits it, so the plan is the same, with a tenth
// of the Karmarkar–Karp runs. Smaller shares try both at every count.
constexpr size_t kGreedyLedSearchFrom = 256;

// The fewest microbatches a share fits in (fewest_microbatches, packing.hpp).
std::vector<Microbatch> fewest(ShareSplitter& share) {
  if (share.size() == 0) return {};
  const int64_t budget = share.budget();
  const int all_alone = static_cast<int>(share.size());
  const int lower_bound =
      static_cast<int>(std::max<int64_t>(1, (share.tokens() + budget - 1) / budget));
  if (share.size() > kGreedyLedSearchFrom) {
    const int count =
        fewest_count(lower_bound, all_alone, [&](int c) { return share.greedy_fits(c); });
    return std::move(*share.split(count));
  }
  std::optional<std::vector<Microbatch>> best;
  fewest_count(lower_bound, all_alone, [&](int c) {
    auto split = share.split(c);
    if (!split) return false;
    best = std::move(split);
    return true;
  });
  return std::move(*best);
}

}  // namespace

// Exactly `count` microbatches (some possibly empty) of balanced cost within the budget,
// or nothing if neither method finds one. Of two feasible splits the one with the
// cheaper most expensive microbatch wins.
std::optional<std::vector<Microbatch>> split_into(const std::vector<int>& sequences, int count,
                                                  const StepItems& items, int64_t budget) {
  ShareSplitter share(sequences, items, budget);
  return share.split(count);
}

// The fewest microbatches a rank's sequences fit in, searched upwards from the token
// lower bound ⌈tokens/budget⌉: first by doubling steps, then by bisection. Each
// sequence alone always fits (lengths were checked) and Karmarkar–Karp into count ≥ n
// parts puts every item alone, so count = n always succeeds. Neither splitter is
// strictly monotone in the count, so the bisection can miss a smaller feasible count
// after a failed one; the split it returns (at the smallest count found) always fits.
// A share of more than kGreedyLedSearchFrom sequences is searched with the greedy split
// alone (which also fits at count = n: an empty bin always has room).
std::vector<Microbatch> fewest_microbatches(const std::vector<int>& sequences,
                                            const StepItems& items, int64_t budget) {
  ShareSplitter share(sequences, items, budget);
  return fewest(share);
}

std::optional<std::vector<Microbatch>> largest_split_into(const std::vector<int>& sequences,
                                                          int count, int above,
                                                          const StepItems& items, int64_t budget) {
  ShareSplitter share(sequences, items, budget);
  std::optional<std::vector<Microbatch>> split;
  for (int c = count; !split && c > above; --c) split = share.split(c);
  return split;
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

void check_token_budget(const std::vector<int64_t>& lengths, int step, int64_t token_budget) {
  for (const int64_t length : lengths)
    if (length > token_budget)
      throw ConfigError("balance.token_budget", token_budget_message(length, step, token_budget));
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
  const BalancerRow& row = balancers().at(opt.scheme, "balance.scheme");
  std::vector<std::vector<Microbatch>> per_rank = row.factory(items, world, opt);
  for (size_t r = 0; r < per_rank.size(); ++r) plan.ranks[r].microbatches = std::move(per_rank[r]);

  // 2. Most expensive first (fsdp pairs microbatch i of every rank, so sorting every
  //    rank the same way lines up similar costs), unless the row keeps its own order;
  //    then pad to equal counts.
  size_t most = 0;
  for (RankPlan& rank : plan.ranks) {
    if (!row.keeps_order)
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

// Plans of this many sequences or more are timed on several threads (t must then be
// safe to call from several threads at once, as a cost model's is).
constexpr size_t kTimedThreadedFrom = 4096;

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
  const auto times = static_cast<size_t>(num_units) * static_cast<size_t>(num_passes);
  // Each shard group runs at the pace of its slowest rank at every unit; the groups meet
  // at the cross-replica reduction after the last microbatch. The slowest rank of each
  // (microbatch, unit, pass) is found on several threads for large plans, then summed
  // in that order (the same sum however many threads ran).
  double slowest_group = 0.0;
  std::vector<double> slowest(count * times);
  for (size_t first = 0; first < ranks; first += g) {
    const size_t last = std::min(ranks, first + g);
    for_each_index(count, plan.lengths.size() >= kTimedThreadedFrom, [&](size_t m) {
      std::vector<int64_t> tokens(last - first, 0);
      std::vector<double> sum_sq(last - first, 0.0);
      for (size_t r = first; r < last; ++r) {
        if (m >= plan.ranks[r].microbatches.size()) continue;
        tokens[r - first] = plan.ranks[r].microbatches[m].tokens;
        sum_sq[r - first] = sum_of_squares(plan.ranks[r].microbatches[m], plan.lengths);
      }
      for (int unit = 0; unit < num_units; ++unit)
        for (int pass = 0; pass < num_passes; ++pass) {
          double worst = 0.0;
          for (size_t r = 0; r < tokens.size(); ++r)
            worst = std::max(worst, t(unit, pass, tokens[r], sum_sq[r]));
          slowest[m * times + static_cast<size_t>(unit * num_passes + pass)] = worst;
        }
    });
    double total = 0.0;
    for (const double s : slowest) total += s;
    slowest_group = std::max(slowest_group, total);
  }
  return slowest_group;
}

double odc_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t) {
  std::vector<double> own(plan.ranks.size(), 0.0);
  for_each_index(plan.ranks.size(), plan.lengths.size() >= kTimedThreadedFrom, [&](size_t r) {
    for (const Microbatch& mb : plan.ranks[r].microbatches) {
      const double sum_sq = sum_of_squares(mb, plan.lengths);
      for (int unit = 0; unit < num_units; ++unit)
        for (int pass = 0; pass < num_passes; ++pass) own[r] += t(unit, pass, mb.tokens, sum_sq);
    }
  });
  double slowest = 0.0;
  for (const double o : own) slowest = std::max(slowest, o);
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
