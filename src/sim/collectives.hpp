// Collectives of `minipt simulate`: groups of ranks (the shard group, its replicas, the
// whole job), channels on which each rank's collectives are matched by position (as MPI
// and NCCL match them), and their price: a collective starts when its group's last rank
// joins it and crosses the network (sim/network.hpp) like NCCL's ring, or a tree's
// 2·⌈log2 n⌉ latencies for small all-reduces and barriers.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/engine.hpp"
#include "sim/network.hpp"

namespace minipt::sim {

// Where a rank's collectives are matched: its pull lane and push lane (inside its shard
// group), its compute lane (the job), the cross-replica reduction (its replicas).
enum class Channel : int8_t { pull = 0, push = 1, control = 2, replica = 3 };

// A collective of one group of ranks: starts when its last member posts it.
struct Collective {
  int joined = 0;
  int released = 0;
  Signal done;
};

// A rank's place in one collective: what it waits for, and the key that releases it.
struct Joined {
  Collective* c = nullptr;
  int64_t key = 0;
  Channel channel = Channel::control;
};

class Collectives {
 public:
  Collectives(Engine& engine, Network& network);

  // The members of rank r's group on a channel: `count` ranks first, first+stride, ...
  struct Group {
    int id, count, first, stride;
  };
  Group group_of(Channel channel, int r) const;

  // Joins rank r to its next collective on `channel`; when the group's last rank joins,
  // the collective starts: `bytes_per_rank` cross each member's ingress and egress at the
  // operation's bandwidth (ring), after its latency (a tree's 2·⌈log2 n⌉ hops if `tree`).
  // A group within a node uses the members' own links; one across nodes, its members'
  // share of their nodes' NICs (the links one-sided traffic to other nodes takes), so a
  // collective inside a node and one across nodes in flight together (hybrid sharding's
  // reduce-scatter and per-unit replica sum) do not slow each other down.
  Joined join(Channel channel, int r, CommOp op, double bytes_per_rank, bool tree);
  // Rank r is past the collective; the last to pass frees it.
  void release(int r, const Joined& j);
  // Joins rank r to the ring all-reduce across its replicas of `elements` gradient
  // elements: 2·(n−1)/n of them through each rank, at the reduce-scatter bandwidth of the
  // class.
  Joined join_replica_reduce(int r, int64_t elements);

 private:
  struct Open {
    std::unordered_map<int64_t, std::unique_ptr<Collective>> open;
    std::vector<int64_t> next;
  };
  Engine& engine_;
  Network& network_;
  Open channels_[4];
  std::vector<Engine::PartSpec> parts_;
};

}  // namespace minipt::sim
