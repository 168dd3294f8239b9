#include "sim/collectives.hpp"

#include <algorithm>

namespace minipt::sim {

namespace {
int ceil_log2(int n) {
  int k = 0;
  while ((1 << k) < n) ++k;
  return k;
}
}  // namespace

Collectives::Collectives(Engine& engine, Network& network) : engine_(engine), network_(network) {}

Collectives::Group Collectives::group_of(Channel channel, int r) const {
  const Topology& t = network_.topology();
  const int shard = t.shard;
  if (channel == Channel::pull || channel == Channel::push)
    return {r / shard, shard, r / shard * shard, 1};  // shard group
  if (channel == Channel::replica) return {r % shard, t.world / shard, r % shard, shard};
  return {0, t.world, 0, 1};  // the job
}

Joined Collectives::join(Channel channel, int r, CommOp op, double bytes_per_rank, bool tree) {
  const int world = network_.topology().world;
  Open& ch = channels_[static_cast<size_t>(channel)];
  if (ch.next.empty()) ch.next.assign(static_cast<size_t>(world), 0);
  const Group g = group_of(channel, r);
  const int64_t key = ch.next[static_cast<size_t>(r)]++ * world + g.id;
  auto& slot = ch.open[key];
  if (!slot) slot = std::make_unique<Collective>();
  Collective* c = slot.get();
  if (++c->joined < g.count) return {c, key, channel};
  const LinkClass cls = network_.class_of(g.first, g.count, g.stride);
  const LinkCost& l = network_.cost().link(op, cls);
  const double latency = tree ? l.latency_s * 2 * std::max(1, ceil_log2(g.count)) : l.latency_s;
  parts_.clear();
  if (!tree && bytes_per_rank > 0 && l.bandwidth_Bps > 0)
    network_.ring_parts(g.first, g.count, g.stride, bytes_per_rank / l.bandwidth_Bps, parts_);
  engine_.transfer(latency, parts_, &c->done);
  return {c, key, channel};
}

void Collectives::release(int r, const Joined& j) {
  if (++j.c->released == group_of(j.channel, r).count)
    channels_[static_cast<size_t>(j.channel)].open.erase(j.key);
}

Joined Collectives::join_replica_reduce(int r, int64_t elements) {
  const Topology& t = network_.topology();
  const int n = t.world / t.shard;
  const double bytes =
      static_cast<double>(elements) * network_.cost().grad_bytes * 2.0 * (n - 1) / n;
  return join(Channel::replica, r, CommOp::reduce_scatter, bytes, false);
}

}  // namespace minipt::sim
