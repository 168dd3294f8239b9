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
// that have been an extreme are ever sorted; an exchange updates in O(|H| + |P|).
#include <algorithm>
#include <cmath>
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
  // Σ sum² falls with every exchange, so the pass ends; the cap only guards against
  // rounding making two sums trade places forever.
  const size_t cap = 16 * (n + k);
  const auto lighter = [&](size_t a, size_t b) {
    return part[a].sum != part[b].sum ? part[a].sum < part[b].sum : a < b;
  };
  std::vector<size_t> order;
  size_t swaps = 0;
  for (; swaps < cap; ++swaps) {
    // The heaviest: the largest sum, ties to the lower index; the lightest likewise.
    size_t heaviest = 0, lightest = 0;
    for (size_t p = 1; p < k; ++p) {
      if (part[p].sum > part[heaviest].sum) heaviest = p;
      if (lighter(p, lightest)) lightest = p;
    }
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
      f.changed = t.changed = true;
      f.replace(x.extreme, take);
      t.replace(x.other, give);
      f.sum = f_sum;
      t.sum = t_sum;
      return true;
    };
    // The other parts by room: the extreme's opposite first, then all in order of sum
    // (sorted only when that first one allows no exchange).
    const auto try_parts = [&](size_t from, size_t first, bool is_heaviest) {
      const auto room_of = [&](size_t other) {
        return is_heaviest ? old_max - part[other].sum : part[other].sum - old_min;
      };
      part[from].sort();
      const auto attempt = [&](size_t other) {
        const Exchange x = best_exchange(part[from], part[other], room_of(other), is_heaviest);
        return x.found && apply(from, other, x);
      };
      if (attempt(first)) return true;
      if (order.empty()) {
        order.resize(k);
        for (size_t p = 0; p < k; ++p) order[p] = p;
        std::sort(order.begin(), order.end(), lighter);
      }
      for (size_t j = 0; j < k; ++j) {
        const size_t other = is_heaviest ? order[j] : order[k - 1 - j];
        if (other == from || other == first) continue;
        if (!(room_of(other) > 0.0)) break;
        if (attempt(other)) return true;
      }
      return false;
    };
    order.clear();
    if (!try_parts(heaviest, lightest, true) && !try_parts(lightest, heaviest, false)) break;
  }
  for (size_t p = 0; p < k; ++p) {
    parts[p] = std::move(part[p].ids);
    if (part[p].changed) std::sort(parts[p].begin(), parts[p].end());
  }
  return swaps;
}

}  // namespace minipt
