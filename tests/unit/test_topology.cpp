// Node layout, peer classes and transport selection from the comm.* keys (comm/topology.hpp).
#include <gtest/gtest.h>

#include "comm/replica.hpp"
#include "comm/topology.hpp"
#include "comm/transports.hpp"
#include "core/error.hpp"

namespace minipt {
namespace {

TEST(Topology, AShardGroupSpansTheNodesItsRanksSitOn) {
  const auto expect = [](NodeLayout job, int shard, int ranks_per_node, int nodes) {
    const NodeLayout g = group_nodes(job, shard);
    EXPECT_EQ(g.ranks_per_node, ranks_per_node) << job.ranks_per_node << "x" << job.nodes;
    EXPECT_EQ(g.nodes, nodes) << job.ranks_per_node << "x" << job.nodes << " shard " << shard;
  };
  expect({4, 2}, 8, 4, 2);  // the whole job
  expect({4, 2}, 4, 4, 1);  // one node per group
  expect({4, 2}, 2, 2, 1);  // half a node
  expect({4, 4}, 8, 4, 2);  // two nodes of four
  expect({1, 4}, 2, 1, 2);  // one rank per node: every peer on another node
  expect({4, 3}, 6, 4, 2);  // groups that straddle node boundaries
  expect({8, 1}, 3, 3, 1);  // not a divisor: still inside one node
}

TEST(Topology, PeerClassesFollowTheLayout) {
  const auto expect = [](int declared, NodeLayout g, bool same, bool other) {
    const PeerClasses p = peer_classes(declared, g);
    EXPECT_EQ(p.same_node, same) << declared << " " << g.ranks_per_node << "x" << g.nodes;
    EXPECT_EQ(p.other_node, other) << declared << " " << g.ranks_per_node << "x" << g.nodes;
  };
  expect(0, {1, 1}, false, false);  // one rank: no peer
  expect(0, {4, 1}, true, false);
  expect(0, {1, 4}, false, true);
  expect(0, {4, 2}, true, true);
  expect(2, {2, 2}, true, true);
  // comm.ranks_per_node = 1 forces the inter-node path: every peer is on another node.
  expect(1, {1, 1}, false, true);
  expect(1, {4, 1}, false, true);
}

TEST(Topology, TheReplicaTransportFollowsTheBackendsMemory) {
  EXPECT_EQ(choose_transports("emulated", "auto", "auto", 0, {2, 2}).replica, "mpi");
  EXPECT_EQ(choose_transports("kokkos", "mpi", "mpi", 0, {4, 1}).replica, "mpi");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 0, {4, 2}).replica, "nccl");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 4}).replica, "nccl");
  // One table like the others: every row has a description, `auto` picks by priority.
  const auto& table = replica_transports();
  EXPECT_EQ(Registry<ReplicaRow>::join(table.names()), "mpi|mpi-staged|nccl");
  for (const auto& row : table.rows()) EXPECT_FALSE(row.description.empty()) << row.name;
  EXPECT_NE(table.find("mpi"), nullptr);
  EXPECT_TRUE(table.find_any("nccl")->needs.cuda_build);
  EXPECT_TRUE(table.find_any("mpi-staged")->needs.device_memory);
}

TEST(Topology, AutoResolvesPerPeerClassFromTheTables) {
  // `auto` never survives the choice: every class names a row of its table.
  for (const char* backend : {"emulated", "cuda"})
    for (const NodeLayout& g : {NodeLayout{1, 1}, NodeLayout{4, 1}, NodeLayout{4, 2}}) {
      const TransportChoice t = choose_transports(backend, "auto", "auto", 0, g);
      EXPECT_NE(collective_transports().find_any(t.collectives), nullptr) << t.collectives;
      EXPECT_NE(onesided_transports().find_any(t.onesided), nullptr) << t.onesided;
      for (const PeerTransports* p : {&t.same_node, &t.other_node}) {
        if (p->empty()) continue;
        EXPECT_NE(collective_transports().find_any(p->collectives), nullptr) << p->collectives;
        EXPECT_NE(onesided_transports().find_any(p->onesided), nullptr) << p->onesided;
      }
      EXPECT_EQ(t.ranks_per_node, g.ranks_per_node);
    }
}

TEST(Topology, AutoOnOneGpuNodeUsesIpcAndNccl) {
  const TransportChoice o = choose_transports("cuda", "auto", "auto", 0, {4, 1});
  EXPECT_EQ(o.collectives, "nccl");
  EXPECT_EQ(o.onesided, "ipc");
  EXPECT_EQ(o.ranks_per_node, 4);
}

void expect_peers(const PeerTransports& p, const std::string& onesided,
                  const std::string& collectives) {
  EXPECT_EQ(p.onesided, onesided);
  EXPECT_EQ(p.collectives, collectives);
}

TEST(Topology, OneNodeHasNoOtherNodePeers) {
  const TransportChoice o = choose_transports("cuda", "auto", "auto", 0, {4, 1});
  expect_peers(o.same_node, "ipc", "nccl");
  expect_peers(o.other_node, "none", "none");
  // One rank alone: no peer of either class, the same-node transport serves itself.
  const TransportChoice one = choose_transports("cuda", "auto", "auto", 0, {1, 1});
  EXPECT_EQ(one.onesided, "ipc");
  expect_peers(one.same_node, "none", "none");
  expect_peers(one.other_node, "none", "none");
}

TEST(Topology, AutoAcrossGpuNodesRoutesEachPeerClass) {
  // A group of 4-rank nodes on 2 nodes: IPC inside the node, staged between, in one
  // composite transport; NCCL collectives for both classes.
  for (const NodeLayout& g : {NodeLayout{4, 2}, NodeLayout{2, 2}, NodeLayout{2, 4}}) {
    const TransportChoice o = choose_transports("cuda", "auto", "auto", 0, g);
    EXPECT_EQ(o.onesided, "ipc+staged");
    EXPECT_EQ(o.collectives, "nccl");
    expect_peers(o.same_node, "ipc", "nccl");
    expect_peers(o.other_node, "staged", "nccl");
  }
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 2, {2, 2}).onesided, "ipc+staged");
  // One rank per node: every peer is on another node, nothing to route to IPC.
  const TransportChoice single = choose_transports("cuda", "auto", "auto", 0, {1, 4});
  EXPECT_EQ(single.onesided, "staged");
  expect_peers(single.same_node, "none", "none");
  expect_peers(single.other_node, "staged", "nccl");
  // comm.ranks_per_node = 1 forces the inter-node path, even for one rank.
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 1}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 4}).onesided, "staged");
  expect_peers(choose_transports("cuda", "auto", "auto", 1, {1, 1}).other_node, "staged", "nccl");
}

TEST(Topology, TheCompositeRowNamesItsParts) {
  const OneSidedRow* row = onesided_transports().find_any("ipc+staged");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->same_node, "ipc");
  EXPECT_EQ(row->other_node, "staged");
  EXPECT_LE(row->priority, 0);  // chosen per peer class, never by priority alone
  EXPECT_TRUE(row->needs.device_memory);
  EXPECT_FALSE(row->needs.single_node);
  // Named explicitly, it routes both classes to its parts.
  const TransportChoice o = choose_transports("cuda", "nccl", "ipc+staged", 0, {4, 2});
  EXPECT_EQ(o.onesided, "ipc+staged");
  expect_peers(o.same_node, "ipc", "nccl");
  expect_peers(o.other_node, "staged", "nccl");
  // Inside one node everything goes to IPC.
  expect_peers(choose_transports("cuda", "nccl", "ipc+staged", 0, {4, 1}).same_node, "ipc", "nccl");
}

TEST(Topology, HostBackendsUseMpi) {
  const TransportChoice o = choose_transports("emulated", "auto", "auto", 0, {2, 2});
  EXPECT_EQ(o.collectives, "mpi");
  EXPECT_EQ(o.onesided, "mpi");
  expect_peers(o.same_node, "mpi", "mpi");
  expect_peers(o.other_node, "mpi", "mpi");
  EXPECT_EQ(choose_transports("kokkos", "mpi", "mpi", 1, {1, 4}).onesided, "mpi");
  expect_peers(choose_transports("kokkos", "auto", "auto", 0, {2, 1}).other_node, "none", "none");
}

TEST(Topology, PeerTransportsAreDescribedForTheHeader) {
  EXPECT_EQ(describe_peer_transports(choose_transports("cuda", "auto", "auto", 0, {4, 2})),
            "same node: onesided ipc, collectives nccl | other node: onesided staged, "
            "collectives nccl");
  EXPECT_EQ(describe_peer_transports(choose_transports("emulated", "auto", "auto", 0, {2, 1})),
            "same node: onesided mpi, collectives mpi | other node: none");
}

TEST(Topology, ExplicitChoicesAreKept) {
  EXPECT_EQ(choose_transports("cuda", "mpi", "staged", 0, {8, 1}).collectives, "mpi");
  EXPECT_EQ(choose_transports("cuda", "mpi", "staged", 0, {8, 1}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "nccl", "ipc", 0, {8, 1}).onesided, "ipc");
}

TEST(Topology, IpcAcrossNodesIsAnInputError) {
  try {
    choose_transports("cuda", "auto", "ipc", 0, {4, 2});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "comm.onesided");
    const std::string what = e.what();
    EXPECT_NE(what.find("2 nodes"), std::string::npos) << what;
    EXPECT_NE(what.find("comm.ranks_per_node"), std::string::npos) << what;
    EXPECT_NE(what.find("staged"), std::string::npos) << what;
  }
  // Also when the group spans declared nodes.
  EXPECT_THROW(choose_transports("cuda", "nccl", "ipc", 2, {2, 2}), ConfigError);
}

}  // namespace
}  // namespace minipt
