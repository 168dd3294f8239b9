#include "trace/waits.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <tuple>

#include "core/warmup.hpp"

namespace minipt {

std::vector<int64_t> waiting_for_ranks_ns(const std::vector<Event>& events, int group_size) {
  std::vector<int64_t> out(events.size(), 0);
  const int group = std::max(group_size, 1);
  auto collective = [](const Event& e) {
    return e.kind == EventKind::gather || e.kind == EventKind::reduce_scatter;
  };
  std::vector<size_t> comm;
  for (size_t i = 0; i < events.size(); ++i)
    if (collective(events[i])) comm.push_back(i);
  if (comm.empty()) return out;

  // 1. Collective instances (group, kind, step, microbatch, unit, occurrence): last post.
  auto same_op = [&](size_t i) {
    const Event& e = events[i];
    return std::make_tuple(e.rank, static_cast<int>(e.kind), e.step, e.microbatch, e.unit);
  };
  std::sort(comm.begin(), comm.end(), [&](size_t a, size_t b) {
    return std::tuple_cat(same_op(a), std::make_tuple(events[a].t_start_ns, events[a].t_end_ns)) <
           std::tuple_cat(same_op(b), std::make_tuple(events[b].t_start_ns, events[b].t_end_ns));
  });
  using Instance = std::tuple<int, int, int, int, int, int>;
  std::vector<Instance> instance_of(comm.size());
  std::map<Instance, int64_t> last_post;
  int occurrence = 0;
  for (size_t k = 0; k < comm.size(); ++k) {
    occurrence = k > 0 && same_op(comm[k]) == same_op(comm[k - 1]) ? occurrence + 1 : 0;
    const Event& e = events[comm[k]];
    const Instance id{e.rank / group, static_cast<int>(e.kind), e.step, e.microbatch, e.unit,
                      occurrence};
    instance_of[k] = id;
    auto [it, fresh] = last_post.try_emplace(id, e.t_start_ns);
    if (!fresh) it->second = std::max(it->second, e.t_start_ns);
  }

  // 2. Each wait's collective: same rank, step, microbatch and unit, nearest end.
  using Key = std::tuple<int, int, int, int>;
  std::map<Key, std::vector<size_t>> candidates;  // positions in comm
  for (size_t k = 0; k < comm.size(); ++k) {
    const Event& e = events[comm[k]];
    candidates[{e.rank, e.step, e.microbatch, e.unit}].push_back(k);
  }
  for (auto& [key, list] : candidates)
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return events[comm[a]].t_start_ns < events[comm[b]].t_start_ns;
    });
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& w = events[i];
    if (w.kind != EventKind::wait || w.lane != 0) continue;
    const auto found = candidates.find({w.rank, w.step, w.microbatch, w.unit});
    if (found == candidates.end()) continue;
    size_t best = found->second.front();
    int64_t best_gap = std::numeric_limits<int64_t>::max();
    for (size_t k : found->second) {
      const int64_t gap = std::llabs(events[comm[k]].t_end_ns - w.t_end_ns);
      if (gap < best_gap) {
        best = k;
        best_gap = gap;
      }
    }
    // 3. The part of the wait before the last post.
    const int64_t post = last_post.at(instance_of[best]);
    const int64_t duration = w.t_end_ns - w.t_start_ns;
    out[i] = std::clamp(std::min(w.t_end_ns, post) - w.t_start_ns, int64_t{0},
                        std::max(duration, int64_t{0}));
  }
  return out;
}

TimeShares time_shares(const std::vector<Event>& events, int first_step, bool fsdp,
                       int group_size) {
  const std::vector<int64_t> waiting =
      fsdp ? waiting_for_ranks_ns(events, group_size) : std::vector<int64_t>(events.size(), 0);
  TimeShares t;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.step < first_step) continue;
    const double d = static_cast<double>(e.t_end_ns - e.t_start_ns) * 1e-9;
    switch (e.kind) {
      case EventKind::forward:
      case EventKind::backward:
      case EventKind::recompute:
      case EventKind::accumulate_grad:
        t.compute += d;
        break;
      case EventKind::optimizer:
        t.optimizer += d;
        break;
      case EventKind::wait: {
        const double w = static_cast<double>(waiting[i]) * 1e-9;
        t.waiting += w;
        t.exposed += d - w;
        break;
      }
      case EventKind::replica_reduce:
        t.exposed += d;
        break;
      case EventKind::allreduce:
        t.waiting += d;
        break;
      case EventKind::barrier:
        t.barrier += d;
        break;
      default:
        break;  // pull/push lanes overlap the compute lane
    }
  }
  return t;
}

int ranks_with_events(const std::vector<Event>& events) {
  std::vector<int> ranks;
  ranks.reserve(events.size());
  for (const Event& e : events) ranks.push_back(e.rank);
  std::sort(ranks.begin(), ranks.end());
  return static_cast<int>(std::unique(ranks.begin(), ranks.end()) - ranks.begin());
}

void summarize_waits(RunFile& rf, int world, int warmup, bool fsdp, int group_size) {
  int num_steps = 0;
  for (const auto& r : rf.steps) num_steps = std::max(num_steps, r.step + 1);
  const int first = first_measured_step(warmup, num_steps);
  const TimeShares t = time_shares(rf.events, first, fsdp, group_size);
  rf.summary.traced_ranks = std::min(ranks_with_events(rf.events), world);
  const double wall = rf.summary.seconds * rf.summary.traced_ranks;
  rf.summary.exposed_communication_fraction = wall > 0 ? t.exposed / wall : 0.0;
  rf.summary.waiting_fraction = wall > 0 ? (t.waiting + t.barrier) / wall : 0.0;
}

}  // namespace minipt
