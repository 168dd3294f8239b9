// Transport selection from the comm.* keys and the node layout (train/strategy.hpp).
#include <gtest/gtest.h>

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

TEST(TransportChoice, AutoAcrossGpuNodesUsesTheInterNodePath) {
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 0, {4, 2}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 2, {2, 2}).onesided, "staged");
  // comm.ranks_per_node = 1 forces the inter-node path, even for one rank.
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 1}).onesided, "staged");
  EXPECT_EQ(choose_transports("cuda", "auto", "auto", 1, {1, 4}).onesided, "staged");
}

TEST(TransportChoice, HostBackendsUseMpi) {
  const StrategyOptions o = choose_transports("emulated", "auto", "auto", 0, {2, 2});
  EXPECT_EQ(o.collectives, "mpi");
  EXPECT_EQ(o.onesided, "mpi");
  EXPECT_EQ(choose_transports("kokkos", "mpi", "mpi", 1, {1, 4}).onesided, "mpi");
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
}

}  // namespace
}  // namespace minipt
