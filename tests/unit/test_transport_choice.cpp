// Transport selection from the comm.* keys and the node layout (train/strategy.hpp).
#include <gtest/gtest.h>

#include "comm/transports.hpp"
#include "core/error.hpp"
#include "train/strategy.hpp"

namespace minipt {
namespace {

TEST(TransportChoice, AutoOnOneGpuNodeUsesIpcAndNccl) {
  const StrategyOptions o = choose_transports("cuda", "auto", "auto", 0, {4, 1});
  EXPECT_EQ(o.collectives, "nccl");
  EXPECT_EQ(o.onesided, "ipc");
  EXPECT_EQ(o.ranks_per_node, 4);
}

void expect_peers(const PeerTransports& p, const std::string& onesided,
                  const std::string& collectives) {
  EXPECT_EQ(p.onesided, onesided);
  EXPECT_EQ(p.collectives, collectives);
}

TEST(TransportChoice, OneNodeHasNoOtherNodePeers) {
  const StrategyOptions o = choose_transports("cuda", "auto", "auto", 0, {4, 1});
  expect_peers(o.same_node, "ipc", "nccl");
  expect_peers(o.other_node, "none", "none");
  // One rank alone: no peer of either class, the same-node transport serves itself.
  const StrategyOptions one = choose_transports("cuda", "auto", "auto", 0, {1, 1});
  EXPECT_EQ(one.onesided, "ipc");
  expect_peers(one.same_node, "none", "none");
  expect_peers(one.other_node, "none", "none");
}

TEST(TransportChoice, AutoAcrossGpuNodesRoutesEachPeerClass) {
  // A group of 4-rank nodes on 2 nodes: IPC inside the node, staged between, in one
  // composite transport; NCCL collectives for both classes.
  for (const NodeLayout& g : {NodeLayout{4, 2}, NodeLayout{2, 2}, NodeLayout{2, 4}}) {
    const StrategyOptions o = choose_transports("cuda", "auto", "auto", 0, g);
    EXPECT_EQ(o.onesided, "ipc+staged");
    EXPECT_EQ(o.collectives, "nccl");
    expect_peers(o.same_node, "ipc", "nccl");
    expect_peers(o.other_node, "staged", "nccl");
  }
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 2, {2, 2}).onesided, "ipc+staged");
  // One rank per node: every peer is on another node, nothing to route to IPC.
  const StrategyOptions single = choose_transports("cuda", "auto", "auto", 0, {1, 4});
  EXPECT_EQ(single.onesided, "staged");
  expect_peers(single.same_node, "none", "none");
  expect_peers(single.other_node, "staged", "nccl");
  // comm.ranks_per_node = 1 forces the inter-node path, even for one rank.
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 1}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 4}).onesided, "staged");
  expect_peers(choose_transports("cuda", "auto", "auto", 1, {1, 1}).other_node, "staged", "nccl");
}

TEST(TransportChoice, TheCompositeRowNamesItsParts) {
  const OneSidedRow* row = onesided_transports().find_any("ipc+staged");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->same_node, "ipc");
  EXPECT_EQ(row->other_node, "staged");
  EXPECT_LE(row->priority, 0);  // chosen per peer class, never by priority alone
  EXPECT_TRUE(row->needs.device_memory);
  EXPECT_FALSE(row->needs.single_node);
  // Named explicitly, it routes both classes to its parts.
  const StrategyOptions o = choose_transports("cuda", "nccl", "ipc+staged", 0, {4, 2});
  EXPECT_EQ(o.onesided, "ipc+staged");
  expect_peers(o.same_node, "ipc", "nccl");
  expect_peers(o.other_node, "staged", "nccl");
  // Inside one node everything goes to IPC.
  expect_peers(choose_transports("cuda", "nccl", "ipc+staged", 0, {4, 1}).same_node, "ipc", "nccl");
}

TEST(TransportChoice, HostBackendsUseMpi) {
  const StrategyOptions o = choose_transports("emulated", "auto", "auto", 0, {2, 2});
  EXPECT_EQ(o.collectives, "mpi");
  EXPECT_EQ(o.onesided, "mpi");
  expect_peers(o.same_node, "mpi", "mpi");
  expect_peers(o.other_node, "mpi", "mpi");
  EXPECT_EQ(choose_transports("kokkos", "mpi", "mpi", 1, {1, 4}).onesided, "mpi");
  expect_peers(choose_transports("kokkos", "auto", "auto", 0, {2, 1}).other_node, "none", "none");
}

TEST(TransportChoice, PeerTransportsAreDescribedForTheHeader) {
  EXPECT_EQ(describe_peer_transports(choose_transports("cuda", "auto", "auto", 0, {4, 2})),
            "same node: onesided ipc, collectives nccl | other node: onesided staged, "
            "collectives nccl");
  EXPECT_EQ(describe_peer_transports(choose_transports("emulated", "auto", "auto", 0, {2, 1})),
            "same node: onesided mpi, collectives mpi | other node: none");
}

TEST(TransportChoice, ExplicitChoicesAreKept) {
  EXPECT_EQ(choose_transports("cuda", "mpi", "staged", 0, {8, 1}).collectives, "mpi");
  EXPECT_EQ(choose_transports("cuda", "mpi", "staged", 0, {8, 1}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "nccl", "ipc", 0, {8, 1}).onesided, "ipc");
}

TEST(TransportChoice, IpcAcrossNodesIsAnInputError) {
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
