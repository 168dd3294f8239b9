// The transport tables: every Collectives (fsdp) and OneSided (odc) implementation is
// one row, registered in transports.cpp (or, for a transport outside the library, by a
// static registration in its own file). A new transport is its own file plus one row;
// the strategies, `auto`, the configuration checks and --help read the tables.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>
#include <string>

#include "comm/transport.hpp"
#include "compute/backend.hpp"
#include "core/registry.hpp"

namespace minipt {

// What a collectives factory gets.
struct CollectivesArgs {
  MPI_Comm comm;    // the ranks of the collectives (the shard group)
  Device& backend;  // its memory space and, for GPU transports, its streams
};

struct CollectivesRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;
  std::function<std::unique_ptr<Collectives>(const CollectivesArgs&)> factory{};
};

// What a one-sided factory gets.
struct OneSidedArgs {
  MPI_Comm world;  // every rank of the job
  MPI_Comm shard;  // this rank's shard group: the owners it addresses
  Device& backend;
  int64_t count = 0;  // elements of each of the two regions (the rank's shard total)
  bool deterministic = false;
  bool pull_by_kernel = true;  // comm.odc_pull = kernel
  // comm.ranks_per_node: > 0 declares nodes of that many consecutive ranks of `world`
  // (composite transports split the shard group by node with it); 0: detected.
  int declared_ranks_per_node = 0;
};

// A constructed one-sided transport and the rank, in the communicator it was built
// over, of the shard group's first owner (0 when built over `shard`).
struct OneSidedSetup {
  std::unique_ptr<OneSided> transport;
  int first_owner = 0;
};

struct OneSidedRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;
  std::function<OneSidedSetup(const OneSidedArgs&)> factory{};
  // A composite row routes peers on the rank's node to row `same_node` and the others to
  // row `other_node`; `auto` chooses it (never by priority) for a shard group that spans
  // nodes when the two classes' picks are these (comm/topology.hpp). Empty: not composite.
  std::string same_node{}, other_node{};
};

Registry<CollectivesRow>& collective_transports();  // comm.collectives
Registry<OneSidedRow>& onesided_transports();       // comm.onesided

// The transport of `name` for `backend`: ConfigError naming comm.collectives /
// comm.onesided when this build lacks it or it moves the other kind of memory.
std::unique_ptr<Collectives> make_collectives(const std::string& name, const CollectivesArgs& args);
OneSidedSetup make_onesided(const std::string& name, const OneSidedArgs& args);

// Configuration check: ConfigError naming comm.collectives or comm.onesided when the
// transport named there moves the other kind of memory than compute.backend works on
// ("auto" and names that are no variant pass: the choice check reports those).
void check_transport_memory(const std::string& backend, const std::string& collectives,
                            const std::string& onesided);

}  // namespace minipt
