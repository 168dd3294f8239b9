// Swap refinement of a rank partition (refine_partition, packing.hpp): the pass the
// reference packer runs after Karmarkar–Karp, written from its description in
// DESIGN.md ("Round 3: the reference packer, described").
//
// Repeat until nothing changes: take the heaviest part H and look for a one-for-one
// exchange with another part P that moves a cheaper item into H, without lifting P to
// the old maximum or dropping H below the old minimum; if there is none, do the mirror
// for the lightest part L (a dearer item into L, P not below the old minimum, L not up to
// the old maximum). With d the cost moved, the conditions are 0 < d < sum_H − sum_P
// (resp. 0 < d < sum_P − sum_L), so every exchange moves two sums strictly closer
// together without crossing: the maximum never rises, the minimum never falls, and
// Σ sum² falls strictly, so the pass ends. Counts per part are preserved.
//
// Our choices where the description leaves them open: the other parts are tried lightest
// first for H (heaviest first for L), the parts with the most room; within the first part
// that allows an exchange, the pair taken is the one whose d is nearest half the room
// (the largest fall of Σ sum² for that pair of parts). Ties go to the lower index.
// Finding that pair is a binary search in H's items (kept sorted by cost once H has been
// an extreme) for each item of P, so a part tried costs O(|P| log |H|) and only the parts
// that have been an extreme are ever sorted; an exchange updates in O(|H| + |P| + log k).
// The parts are kept ordered by (sum, index), so the extremes and the order of the others
// cost O(log k), not a sort of all k parts per exchange. A heaviest part that found no
// exchange stays stuck until it or the parts it could trade with change: while it stays
// the heaviest, unchanged, only the parts changed since are tried again (the others fail
// as before: the best pair of an unchanged part is the same, and the bounds it must
// respect only tighten). Same exchanges as trying every part, in the same order.
#include <algorithm>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "workload/packing.hpp"

namespace minipt {

namespace {

using Item = std::pair<double, size_t>;  // (cost, position in the part's lists)

struct Part {
  double sum = 0.0;
  std::vector<int> ids;       // item ids, in the caller's order, updated in place
  std::vector<double> costs;  // their costs
  std::vector<Item> by_cost;  // once `sorted`: (cost, position) ascending
  bool sorted = false;
  bool changed = false;  // ids no longer in the caller's order

  void sort() {
    if (sorted) return;
    by_cost.clear();
    for (size_t i = 0; i < costs.size(); ++i) by_cost.emplace_back(costs[i], i);
    std::sort(by_cost.begin(), by_cost.end());
    sorted = true;
  }
  // The item at `position` now costs `cost` (its id is set by the caller).
  void replace(size_t position, double cost) {
    if (sorted) {
      by_cost.erase(
          std::lower_bound(by_cost.begin(), by_cost.end(), Item{costs[position], position}));
      const Item x{cost, position};
      by_cost.insert(std::upper_bound(by_cost.begin(), by_cost.end(), x), x);
    }
    costs[position] = cost;
  }
};

struct Exchange {
  size_t extreme = 0, other = 0;  // positions in the extreme part and in the other part
  double score = 0.0;             // |d − room/2|: lower is better
  bool found = false;
};

// The exchange between the extreme part (sorted) and `other` whose moved cost d lies in
// (0, room) and is nearest room/2: the heaviest part takes a cheaper item (d = a − b, a
// its item, b the other's), the lightest a dearer one (d = b − a). Ties: the first item
// of `other`, then the cheaper item of the extreme part.
Exchange best_exchange(const Part& extreme, const Part& other, double room, bool heaviest) {
  Exchange best;
  const double half = room / 2.0;
  const auto& sorted = extreme.by_cost;
  for (size_t j = 0; j < other.costs.size(); ++j) {
    const double b = other.costs[j];
    const double target = heaviest ? b + half : b - half;
    const auto it = std::lower_bound(sorted.begin(), sorted.end(), Item{target, 0});
    for (auto c = it == sorted.begin() ? it : it - 1; c != sorted.end() && c <= it; ++c) {
      const double a = c->first;
      const double d = heaviest ? a - b : b - a;
      if (!(d > 0.0 && d < room)) continue;
      const double score = std::abs(d - half);
      if (!best.found || score < best.score) best = {c->second, j, score, true};
    }
  }
  return best;
}

}  // namespace

std::pair<double, double> partition_extremes(const std::vector<std::vector<int>>& parts,
                                             const std::vector<double>& costs) {
  double hi = 0.0, lo = 0.0;
  for (size_t p = 0; p < parts.size(); ++p) {
    double sum = 0.0;
    for (const int i : parts[p]) sum += costs[static_cast<size_t>(i)];
    hi = p == 0 ? sum : std::max(hi, sum);
    lo = p == 0 ? sum : std::min(lo, sum);
  }
  return {hi, lo};
}

size_t refine_partition(std::vector<std::vector<int>>& parts, const std::vector<double>& costs) {
  const size_t k = parts.size();
  if (k < 2) return 0;
  std::vector<Part> part(k);
  size_t n = 0;
  for (size_t p = 0; p < k; ++p) {
    part[p].ids = std::move(parts[p]);
    for (const int i : part[p].ids) {
      part[p].costs.push_back(costs[static_cast<size_t>(i)]);
      part[p].sum += part[p].costs.back();
    }
    n += part[p].ids.size();
  }
  // Every item by cost, with the part that holds it now (costs never change, owners do):
  // the heaviest part's search over all parts looks only at the items close below its own.
  std::vector<std::pair<double, int>> items_by_cost;
  std::vector<size_t> owner(costs.size(), k);
  for (size_t p = 0; p < k; ++p)
    for (const int i : part[p].ids) {
      items_by_cost.emplace_back(costs[static_cast<size_t>(i)], i);
      owner[static_cast<size_t>(i)] = p;
    }
  std::sort(items_by_cost.begin(), items_by_cost.end());
  // Σ sum² falls with every exchange, so the pass ends; the cap only guards against
  // rounding making two sums trade places forever.
  const size_t cap = 16 * (n + k);
  // The parts by (sum, index): ascending is lightest first, ties to the lower index.
  std::set<std::pair<double, size_t>> by_sum;
  for (size_t p = 0; p < k; ++p) by_sum.emplace(part[p].sum, p);
  // The heaviest part that found no exchange (k: none), and the parts changed since.
  size_t stuck = k;
  std::vector<char> dirty(k, 0);
  std::vector<size_t> dirty_list;
  const auto mark = [&](size_t p) {
    if (!dirty[p]) dirty[p] = 1, dirty_list.push_back(p);
  };
  size_t swaps = 0;
  for (; swaps < cap; ++swaps) {
    // The heaviest: the largest sum, ties to the lower index; the lightest likewise.
    const double top = by_sum.rbegin()->first;
    const size_t heaviest = by_sum.lower_bound({top, 0})->second;
    const size_t lightest = by_sum.begin()->second;
    const double old_max = part[heaviest].sum, old_min = part[lightest].sum;
    if (!(old_max > old_min)) break;
    // Applies an exchange if the updated sums keep the promise (both strictly inside
    // the old extremes).
    const auto apply = [&](size_t from, size_t to, const Exchange& x) {
      Part& f = part[from];
      Part& t = part[to];
      const double give = f.costs[x.extreme], take = t.costs[x.other];
      const double f_sum = f.sum - give + take;
      const double t_sum = t.sum - take + give;
      if (!(f_sum > old_min && f_sum < old_max && t_sum > old_min && t_sum < old_max)) return false;
      std::swap(f.ids[x.extreme], t.ids[x.other]);
      owner[static_cast<size_t>(f.ids[x.extreme])] = from;
      owner[static_cast<size_t>(t.ids[x.other])] = to;
      f.changed = t.changed = true;
      f.replace(x.extreme, take);
      t.replace(x.other, give);
      by_sum.erase({f.sum, from});
      by_sum.erase({t.sum, to});
      f.sum = f_sum;
      t.sum = t_sum;
      by_sum.emplace(f.sum, from);
      by_sum.emplace(t.sum, to);
      mark(from);
      mark(to);
      return true;
    };
    // The other parts by room: the extreme's opposite first, then all in order of sum
    // (the heaviest's lightest first; `only`: just these parts, the rest known to fail).
    const auto try_parts = [&](size_t from, size_t first, bool is_heaviest,
                               const std::vector<size_t>* only) {
      const auto room_of = [&](size_t other) {
        return is_heaviest ? old_max - part[other].sum : part[other].sum - old_min;
      };
      part[from].sort();
      const auto attempt = [&](size_t other) {
        const Exchange x = best_exchange(part[from], part[other], room_of(other), is_heaviest);
        return x.found && apply(from, other, x);
      };
      if ((only == nullptr || dirty[first]) && attempt(first)) return true;
      const auto visit = [&](size_t other) {  // 1: exchanged, -1: no room left, 0: go on
        if (other == from || other == first) return 0;
        if (!(room_of(other) > 0.0)) return -1;
        return attempt(other) ? 1 : 0;
      };
      if (only != nullptr) {
        std::vector<std::pair<double, size_t>> cand;
        for (const size_t p : *only) cand.emplace_back(part[p].sum, p);
        std::sort(cand.begin(), cand.end());
        for (const auto& [sum, other] : cand)
          if (const int v = visit(other)) return v > 0;
        return false;
      }
      // The heaviest's first part in scan order with an exchange: a part P has one iff it
      // holds an item b below one of the heaviest's items a with a − b < old_max − sum_P
      // (the pair best_exchange looks at then qualifies too), so only the items within the
      // widest room below each a are looked at. The part found is tried as the scan would;
      // only if rounding makes it refuse does the scan below run. (The lightest finds a
      // part early in its scan, so it scans: measured faster than a window search.)
      if (is_heaviest) {
        const double widest = old_max - old_min;
        size_t found = k;
        for (const double a : part[from].costs) {
          auto it = std::lower_bound(items_by_cost.begin(), items_by_cost.end(),
                                     std::pair<double, int>{a, -1});
          while (it != items_by_cost.begin()) {
            --it;
            const double d = a - it->first;
            if (!(d < widest)) break;
            const size_t other = owner[static_cast<size_t>(it->second)];
            if (other == from || other == first || !(d > 0.0) || !(d < room_of(other))) continue;
            // Scan order: lightest first, ties to the lower index.
            if (found == k || std::pair(part[other].sum, other) < std::pair(part[found].sum, found))
              found = other;
          }
        }
        if (found == k) return false;
        if (attempt(found)) return true;
      }
      // An exchange changes only the two parts it touches and ends the search, so the
      // iteration is over an unchanged set.
      if (is_heaviest) {
        for (const auto& [sum, other] : by_sum)
          if (const int v = visit(other)) return v > 0;
      } else {
        for (auto it = by_sum.rbegin(); it != by_sum.rend(); ++it)
          if (const int v = visit(it->second)) return v > 0;
      }
      return false;
    };
    // The heaviest: every part, or only those changed since it last found nothing. Either
    // way the parts tried are clean afterwards (an exchange ends the search and is retried
    // in full next time).
    const std::vector<size_t> changed = dirty_list;
    const bool retry = stuck == heaviest && !dirty[heaviest];
    const bool exchanged = try_parts(heaviest, lightest, true, retry ? &changed : nullptr);
    for (const size_t p : dirty_list) dirty[p] = 0;
    dirty_list.clear();
    if (exchanged) {
      stuck = k;
      continue;
    }
    stuck = heaviest;
    if (!try_parts(lightest, heaviest, false, nullptr)) break;
  }
  for (size_t p = 0; p < k; ++p) {
    parts[p] = std::move(part[p].ids);
    if (part[p].changed) std::sort(parts[p].begin(), parts[p].end());
  }
  return swaps;
}

}  // namespace minipt
