// The simulated network of `minipt simulate`: where ranks sit (nodes of consecutive
// ranks, shard groups), the links a transfer crosses (each rank's ingress and egress,
// each node's network interfaces, the owners' side of one-sided traffic as pools) and
// the price of a one-sided transfer. Collectives (sim/collectives.hpp) and the step
// program's executor (sim/simulate.cpp) hand their transfers to the engine through it.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "model/cost_model.hpp"
#include "sim/engine.hpp"

namespace minipt::sim {

// `world` ranks, `per_node` consecutive ranks on each of `nodes` nodes, in shard groups
// of `shard` consecutive ranks (world without hybrid sharding).
struct Topology {
  int world = 1, per_node = 1, nodes = 1, shard = 1;
  Topology(int ranks, int gpus_per_node, int shard_group);
  int node_of(int r) const { return r / per_node; }
};

// The cost model with the [sim] table's overrides applied.
CostModel with_topology(CostModel m, const SimOptions& s);

class Network {
 public:
  Network(const Topology& topo, const CostModel& cost);
  const Topology& topology() const { return topo_; }
  const CostModel& cost() const { return cost_; }

  // The link class of `count` ranks first, first+stride, ...: one rank, one node, or
  // several nodes.
  LinkClass class_of(int first, int count, int stride) const;
  // Appends to `parts` a ring collective's share through each of those ranks: `work`
  // seconds on its ingress and egress, the members' own links inside a node, their
  // share of their nodes' NICs across nodes.
  void ring_parts(int first, int count, int stride, double work,
                  std::vector<Engine::PartSpec>& parts);
  // odc: rank r pulls (get) or pushes (accumulate) `bytes`, a whole unit, 1/shard of it
  // from or to every owner of its shard group. The bytes of owners on r's node cross r's
  // link and the owners' pools; those of other nodes cross r's node's NICs and the other
  // nodes' pool. Sets `parts`, returns the latency. The one place a one-sided transfer
  // is priced.
  double one_sided(int r, CommOp op, double bytes, std::vector<Engine::PartSpec>& parts);

 private:
  Topology topo_;
  CostModel cost_;
  std::vector<Link> in_, out_, nic_in_, nic_out_;
  Link pool_in_, pool_out_, nic_pool_in_, nic_pool_out_;
};

}  // namespace minipt::sim
