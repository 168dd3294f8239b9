// The job's node layout and its shard groups' transports (comm/topology.hpp), asked as the
// trainer asks them: detected and declared layouts at 1, 2 and 4 ranks on one host.
#include <gtest/gtest.h>
#include <mpi.h>

#include "comm/topology.hpp"
#include "core/error.hpp"

namespace minipt {
namespace {

int world_size() {
  int w = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &w);
  return w;
}

TEST(JobTransports, OneHostIsDetectedAsOneNode) {
  const int world = world_size();
  CommOptions comm;  // auto, auto, detected
  comm.collectives = comm.onesided = "auto";
  const JobTransports j = job_transports(MPI_COMM_WORLD, world, "emulated", comm);
  EXPECT_EQ(j.nodes.nodes, 1);
  EXPECT_EQ(j.nodes.ranks_per_node, world);
  EXPECT_EQ(j.transports.collectives, "mpi");
  EXPECT_EQ(j.transports.onesided, "mpi");
  EXPECT_EQ(j.transports.replica, "mpi");
  EXPECT_EQ(j.transports.other_node.onesided, "none");
  EXPECT_EQ(j.transports.same_node.onesided, world > 1 ? "mpi" : "none");
  EXPECT_LT(local_rank_of(MPI_COMM_WORLD), world);
}

TEST(JobTransports, DeclaredNodesSplitTheJob) {
  const int world = world_size();
  CommOptions comm;
  comm.collectives = comm.onesided = "auto";
  comm.ranks_per_node = 1;  // every rank its own node: only other-node peers
  const JobTransports one = job_transports(MPI_COMM_WORLD, world, "emulated", comm);
  EXPECT_EQ(one.nodes.nodes, world);
  EXPECT_EQ(one.nodes.ranks_per_node, 1);
  EXPECT_EQ(one.transports.same_node.onesided, "none");
  EXPECT_EQ(one.transports.other_node.onesided, "mpi");
  EXPECT_EQ(one.transports.declared_ranks_per_node, 1);
  if (world % 2 == 0) {
    // Nodes of two ranks; shard groups of two fit inside one.
    comm.ranks_per_node = 2;
    const JobTransports two = job_transports(MPI_COMM_WORLD, 2, "emulated", comm);
    EXPECT_EQ(two.nodes.nodes, world / 2);
    EXPECT_EQ(two.transports.ranks_per_node, 2);
    EXPECT_EQ(two.transports.other_node.onesided, "none");
    EXPECT_EQ(two.transports.same_node.onesided, "mpi");
  }
}

TEST(JobTransports, ANodeSizeThatDoesNotDivideTheWorldIsAnInputError) {
  CommOptions comm;
  comm.collectives = comm.onesided = "auto";
  comm.ranks_per_node = 3;
  if (world_size() % 3 == 0) GTEST_SKIP() << "3 divides the world size";
  try {
    job_transports(MPI_COMM_WORLD, world_size(), "emulated", comm);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "comm.ranks_per_node");
  }
}

}  // namespace
}  // namespace minipt
