#include "comm/topology.hpp"

#include <algorithm>

#include "comm/replica.hpp"
#include "comm/transports.hpp"
#include "core/error.hpp"

namespace minipt {

NodeLayout node_layout(MPI_Comm comm, int declared) {
  int world = 1;
  MPI_Comm_size(comm, &world);
  NodeLayout n;
  if (declared > 0) {
    if (world % declared != 0)
      throw ConfigError("comm.ranks_per_node",
                        "= " + std::to_string(declared) + " does not divide the world size " +
                            std::to_string(world) + " (0 detects the layout)");
    n.ranks_per_node = declared;
    n.nodes = world / declared;
    return n;
  }
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int leader = local_rank == 0 ? 1 : 0;
  MPI_Allreduce(&leader, &n.nodes, 1, MPI_INT, MPI_SUM, comm);
  MPI_Allreduce(&local_size, &n.ranks_per_node, 1, MPI_INT, MPI_MAX, comm);
  return n;
}

int local_rank_of(MPI_Comm comm) {
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

NodeLayout group_nodes(const NodeLayout& job, int shard) {
  NodeLayout g = job;
  g.ranks_per_node = std::min(shard, job.ranks_per_node);
  if (shard % job.ranks_per_node == 0)
    g.nodes = shard / job.ranks_per_node;
  else
    g.nodes = job.ranks_per_node % shard == 0 ? 1 : std::min(job.nodes, 2);
  return g;
}

PeerClasses peer_classes(int declared, const NodeLayout& nodes) {
  return {.same_node = nodes.ranks_per_node > 1 && declared != 1,
          .other_node = nodes.nodes > 1 || declared == 1};
}

bool PeerTransports::empty() const { return onesided == "none" && collectives == "none"; }

namespace {

// The row `auto` picks from `table` for a backend on device memory or not, on one node
// or across nodes; ConfigError naming `key` when no row fits.
template <class Row>
const Row& pick_transport(const Registry<Row>& table, const std::string& key, bool device,
                          bool across_nodes) {
  const Row* row = table.pick_auto([&](const VariantNeeds& n) {
    return n.device_memory == device && !(n.single_node && across_nodes);
  });
  if (row == nullptr)
    throw ConfigError(key, std::string("= \"auto\" finds no transport for ") +
                               (device ? "device" : "host") + " memory" +
                               (across_nodes ? " across nodes" : "") + " in " +
                               Registry<Row>::join(table.names()));
  return *row;
}

// The composite one-sided row that routes same-node peers to `same` and the others to
// `other`, or nullptr.
const OneSidedRow* composite_onesided(const std::string& same, const std::string& other) {
  for (const auto& r : onesided_transports().rows())
    if (r.same_node == same && r.other_node == other) return &r;
  return nullptr;
}

constexpr const char* kAuto = "auto";  // the choice the tables resolve

}  // namespace

TransportChoice choose_transports(const std::string& backend, const std::string& collectives,
                                  const std::string& onesided, int declared,
                                  const NodeLayout& nodes) {
  TransportChoice o;
  const BackendRow* b = compute_backends().find_any(backend);
  const bool device = b != nullptr && b->needs.device_memory;
  const PeerClasses peers = peer_classes(declared, nodes);
  // What reaches each class, and the transport the strategy builds for both.
  std::string coll_same = collectives, coll_other = collectives;
  if (collectives == kAuto) {
    coll_same = pick_transport(collective_transports(), "comm.collectives", device, false).name;
    coll_other = pick_transport(collective_transports(), "comm.collectives", device, true).name;
  }
  o.collectives = peers.other_node ? coll_other : coll_same;
  if (peers.other_node && peers.same_node && coll_same != coll_other) coll_same = coll_other;

  std::string os_same = onesided, os_other = onesided;
  if (onesided == kAuto) {
    os_same = pick_transport(onesided_transports(), "comm.onesided", device, false).name;
    os_other = pick_transport(onesided_transports(), "comm.onesided", device, true).name;
    o.onesided = peers.other_node ? os_other : os_same;
    if (peers.other_node && peers.same_node && os_same != os_other) {
      if (const OneSidedRow* c = composite_onesided(os_same, os_other))
        o.onesided = c->name;
      else
        os_same = os_other;
    }
  } else {
    o.onesided = onesided;
    if (const OneSidedRow* r = onesided_transports().find_any(onesided);
        r != nullptr && !r->same_node.empty()) {
      os_same = r->same_node;
      os_other = r->other_node;
    }
  }
  const OneSidedRow* row = onesided_transports().find_any(o.onesided);
  if (row != nullptr && row->needs.single_node && nodes.nodes > 1)
    throw ConfigError(
        "comm.onesided",
        "= \"" + o.onesided + "\" needs every rank on one node, but the job spans " +
            std::to_string(nodes.nodes) + " nodes of " + std::to_string(nodes.ranks_per_node) +
            " ranks (comm.ranks_per_node = " + std::to_string(declared) +
            (declared == 0 ? ", detected" : "") + "); use \"auto\" or \"" +
            pick_transport(onesided_transports(), "comm.onesided", row->needs.device_memory, true)
                .name +
            "\"");
  if (peers.same_node) o.same_node = {os_same, coll_same};
  if (peers.other_node) o.other_node = {os_other, coll_other};
  // The replicas of a shard may sit on any node: the row must not need a single one.
  o.replica = pick_transport(replica_transports(), "comm.collectives", device, true).name;
  o.ranks_per_node = nodes.ranks_per_node;
  o.declared_ranks_per_node = declared;
  return o;
}

std::string describe_peer_transports(const TransportChoice& t) {
  const auto one = [](const char* what, const PeerTransports& p) {
    return std::string(what) +
           (p.empty() ? "none" : "onesided " + p.onesided + ", collectives " + p.collectives);
  };
  return one("same node: ", t.same_node) + " | " + one("other node: ", t.other_node);
}

JobTransports job_transports(MPI_Comm world, int shard_size, const std::string& backend,
                             const CommOptions& comm) {
  JobTransports j;
  j.nodes = node_layout(world, comm.ranks_per_node);
  j.transports = choose_transports(backend, comm.collectives, comm.onesided, comm.ranks_per_node,
                                   group_nodes(j.nodes, shard_size));
  return j;
}

}  // namespace minipt
