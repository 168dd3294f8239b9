// Where a job's ranks sit and what reaches each class of a rank's peers: the node layout
// (detected or declared by comm.ranks_per_node), the nodes one shard group spans, its two
// peer classes (same node, other nodes) and, per class, the collective, one-sided and
// replica transports, picked from the transport tables (comm/transports.hpp,
// comm/replica.hpp). The trainer asks job_transports() once and builds what it names.
#pragma once

#include <mpi.h>

#include <string>

#include "comm/transport.hpp"

namespace minipt {

// Where the ranks of a job sit: `ranks_per_node` ranks on each of `nodes` nodes
// (consecutive ranks share a node).
struct NodeLayout {
  int ranks_per_node = 1;
  int nodes = 1;
};

// comm.ranks_per_node = 0: detected from the shared-memory split of `comm` (ranks that can
// map each other's memory); K > 0: declared K-rank nodes (K must divide the world size,
// else ConfigError). Collective over `comm`.
NodeLayout node_layout(MPI_Comm comm, int declared_ranks_per_node);

// This rank's index among the ranks of `comm` that share its memory (its node).
// Collective over `comm`.
int local_rank_of(MPI_Comm comm);

// The nodes one shard group of `shard` consecutive ranks of a job laid out as `job` spans:
// 1 when it fits inside a node (node-aligned, as consecutive groups of a divisor of the
// node size are). Pure.
NodeLayout group_nodes(const NodeLayout& job, int shard);

// The classes of peers a shard group laid out as `nodes` has: on the same node (if
// ranks_per_node > 1) and on other nodes (if nodes > 1, or comm.ranks_per_node = 1,
// which forces the inter-node path). Pure.
struct PeerClasses {
  bool same_node = false, other_node = false;
};
PeerClasses peer_classes(int declared_ranks_per_node, const NodeLayout& nodes);

// The transports that reach one class of peers of a rank's shard group (row names of the
// transport tables); "none" where the group has no peer of that class.
struct PeerTransports {
  std::string onesided = "none", collectives = "none";
  bool empty() const;  // no peer of this class
};

// The transports of a rank's shard group (row names of the transport tables).
struct TransportChoice {
  std::string collectives = "mpi";  // a row of collective_transports()
  std::string onesided = "mpi";     // a row of onesided_transports()
  // What those reach each class of peers with (a composite one-sided row such as
  // ipc+staged routes the two classes to different rows).
  PeerTransports same_node, other_node;
  // Hybrid sharding's replica sums: a row of replica_transports() (comm/replica.hpp).
  std::string replica = "mpi";
  int ranks_per_node = 0;           // of the shard group, on each node it spans
  int declared_ranks_per_node = 0;  // comm.ranks_per_node (0: detected)
};

// The transports a run uses, from the comm.* choices, the compute backend (a row of
// compute_backends()) and the layout `nodes` of the rank's shard group (ranks_per_node of
// its ranks on each of the `nodes` nodes it spans), for the group's peer classes
// (peer_classes). `auto` picks per class, from the transport tables, the
// highest-priority row that moves the backend's memory and, for other nodes, needs no
// single node: NCCL collectives for GPU runs (both classes), CUDA IPC for same-node and
// host-staged MPI RMA for other-node one-sided access, MPI on the host. A group with both
// classes whose picks differ uses the composite one-sided row of the two (ipc+staged). A
// named transport serves both classes (a composite its parts). The replica transport is
// the highest-priority replica row for the backend's memory. Forcing IPC on a group that
// spans nodes is a ConfigError naming comm.onesided and comm.ranks_per_node. Pure: no
// communication.
TransportChoice choose_transports(const std::string& backend, const std::string& collectives,
                                  const std::string& onesided, int declared_ranks_per_node,
                                  const NodeLayout& nodes);

// "same node: onesided ipc, collectives nccl | other node: none" (the run header).
std::string describe_peer_transports(const TransportChoice& t);

// What a job's rank communicates over: the job's node layout and its shard group's
// transports.
struct JobTransports {
  NodeLayout nodes;            // of the whole job
  TransportChoice transports;  // of this rank's shard group
};

// The node layout of `world` (comm.ranks_per_node) and the transports of a shard group
// of `shard_size` consecutive ranks for a `backend` backend (choose_transports with the
// comm.* choices of `comm`). Collective over `world`.
JobTransports job_transports(MPI_Comm world, int shard_size, const std::string& backend,
                             const CommOptions& comm);

}  // namespace minipt
