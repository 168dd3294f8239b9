#include "sim/network.hpp"

#include <algorithm>

namespace minipt::sim {

Topology::Topology(int ranks, int gpus_per_node, int shard_group)
    : world(ranks),
      per_node(std::min(gpus_per_node, ranks)),
      nodes((ranks + per_node - 1) / per_node),
      shard(shard_group) {}

CostModel with_topology(CostModel m, const SimOptions& s) {
  for (size_t op = 0; op < m.comm.size(); ++op) {
    const bool small = op >= static_cast<size_t>(CommOp::allreduce);
    LinkCost& in = m.comm[op][static_cast<size_t>(LinkClass::intra)];
    LinkCost& ex = m.comm[op][static_cast<size_t>(LinkClass::inter)];
    if (s.intra_bandwidth_GBps > 0 && !small) in.bandwidth_Bps = s.intra_bandwidth_GBps * 1e9;
    if (s.inter_bandwidth_GBps > 0 && !small) ex.bandwidth_Bps = s.inter_bandwidth_GBps * 1e9;
    if (s.intra_latency_us > 0) in.latency_s = s.intra_latency_us * 1e-6;
    if (s.inter_latency_us > 0) ex.latency_s = s.inter_latency_us * 1e-6;
  }
  return m;
}

Network::Network(const Topology& topo, const CostModel& cost)
    : topo_(topo),
      cost_(cost),
      in_(static_cast<size_t>(topo.world)),
      out_(static_cast<size_t>(topo.world)),
      nic_in_(static_cast<size_t>(topo.nodes), Link(topo.per_node)),
      nic_out_(static_cast<size_t>(topo.nodes), Link(topo.per_node)),
      pool_in_(topo.world),
      pool_out_(topo.world),
      nic_pool_in_(topo.world),
      nic_pool_out_(topo.world) {}

LinkClass Network::class_of(int first, int count, int stride) const {
  if (count == 1) return LinkClass::self;
  const int last = first + (count - 1) * stride;
  return topo_.node_of(first) == topo_.node_of(last) ? LinkClass::intra : LinkClass::inter;
}

void Network::ring_parts(int first, int count, int stride, double work,
                         std::vector<Engine::PartSpec>& parts) {
  const bool across_nodes = class_of(first, count, stride) == LinkClass::inter;
  for (int i = 0; i < count; ++i) {
    const int m = first + i * stride;
    const auto node = static_cast<size_t>(topo_.node_of(m));
    parts.push_back({across_nodes ? &nic_in_[node] : &in_[static_cast<size_t>(m)], work});
    parts.push_back({across_nodes ? &nic_out_[node] : &out_[static_cast<size_t>(m)], work});
  }
}

double Network::one_sided(int r, CommOp op, double bytes, std::vector<Engine::PartSpec>& parts) {
  const bool get = op == CommOp::get;
  const int shard = topo_.shard;
  parts.clear();
  double latency = 0;
  if (shard == 1) {
    const LinkCost& l = cost_.link(op, LinkClass::self);
    latency = l.latency_s;
    if (l.bandwidth_Bps > 0) parts.push_back({&in_[0], bytes / l.bandwidth_Bps});
    return latency;
  }
  // Owners are the shard group's ranks; groups are node-aligned when they fit a node.
  const int on_node = std::min(shard, topo_.per_node);
  const double local = static_cast<double>(on_node - 1) / shard * bytes;
  const double remote = static_cast<double>(shard - on_node) / shard * bytes;
  if (local > 0) {
    const LinkCost& l = cost_.link(op, LinkClass::intra);
    const double w = local / l.bandwidth_Bps;
    latency = std::max(latency, l.latency_s);
    parts.push_back({get ? &in_[static_cast<size_t>(r)] : &out_[static_cast<size_t>(r)], w});
    parts.push_back({&pool_out_, w});
    parts.push_back({&pool_in_, w});
  }
  if (remote > 0) {
    const LinkCost& l = cost_.link(op, LinkClass::inter);
    const double w = remote / l.bandwidth_Bps;
    latency = std::max(latency, l.latency_s);
    const auto n = static_cast<size_t>(topo_.node_of(r));
    parts.push_back({get ? &nic_in_[n] : &nic_out_[n], w});
    parts.push_back({get ? &nic_pool_out_ : &nic_pool_in_, w});
  }
  return latency;
}

}  // namespace minipt::sim
