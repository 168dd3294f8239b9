// The transport tables. Every transport has a row in every build (the configuration
// names all of them); the GPU transports' factories exist only in a CUDA build.
#include "comm/transports.hpp"

#include <vector>

#include "comm/mpi_transports.hpp"
#ifdef MINIPT_HAVE_CUDA
#include "comm/cuda/gpu_transports.hpp"
#endif

namespace minipt {

Registry<CollectivesRow>& collective_transports() {
  static Registry<CollectivesRow> table = [] {
    Registry<CollectivesRow> t;
    t.add({.name = "mpi",
           .description = "MPI_Iallgather / MPI_Ireduce_scatter_block on host memory",
           .needs = {},
           .priority = 10,
           .factory = [](const CollectivesArgs& a) { return make_mpi_collectives(a.comm); }});
    CollectivesRow nccl{.name = "nccl",
                        .description = "NCCL all-gather / reduce-scatter on device memory",
                        .needs = {.cuda_build = true, .device_memory = true},
                        .priority = 20};
#ifdef MINIPT_HAVE_CUDA
    nccl.factory = [](const CollectivesArgs& a) {
      const LaneStreams s = lane_streams(a.backend);
      return make_nccl_collectives(a.comm, s.compute, s.pull, s.push);
    };
#endif
    t.add(std::move(nccl));
    return t;
  }();
  return table;
}

#ifdef MINIPT_HAVE_CUDA
namespace {
// The IPC paths' settings, the same for ipc and for ipc+staged's same-node peers.
IpcTuning ipc_tuning(const OneSidedArgs& a) {
  return IpcTuning{.blocks = 0,
                   .f32_get_by_copy_engine = true,
                   .bf16_param_mirror = true,
                   .bf16_get_by_kernel = a.pull_by_kernel};
}
}  // namespace
#endif

Registry<OneSidedRow>& onesided_transports() {
  static Registry<OneSidedRow> table = [] {
    Registry<OneSidedRow> t;
    t.add({.name = "mpi",
           .description = "MPI RMA windows (passive target) on host memory",
           .needs = {},
           .priority = 10,
           .factory = [](const OneSidedArgs& a) {
             // One window over the whole job, each rank addressing its own group's
             // owners: Open MPI's shared-memory windows of different groups on one host
             // would share a backing file name.
             int rank = 0, shard_rank = 0;
             MPI_Comm_rank(a.world, &rank);
             MPI_Comm_rank(a.shard, &shard_rank);
             return OneSidedSetup{make_mpi_onesided(a.world, a.count), rank - shard_rank};
           }});
    OneSidedRow ipc{.name = "ipc",
                    .description = "CUDA IPC peer mappings inside a node (NVLink/PCIe)",
                    .needs = {.cuda_build = true, .device_memory = true, .single_node = true},
                    .priority = 30};
    OneSidedRow staged{.name = "staged",
                       .description = "host-staged MPI RMA for device memory, across nodes",
                       .needs = {.cuda_build = true, .device_memory = true},
                       .priority = 20};
    OneSidedRow node_aware{
        .name = "ipc+staged",
        .description =
            "CUDA IPC for peers on the same node, host-staged MPI RMA for the others "
            "(auto for device memory when a shard group spans nodes)",
        .needs = {.cuda_build = true, .device_memory = true},
        .priority = 0,
        .same_node = "ipc",
        .other_node = "staged"};
#ifdef MINIPT_HAVE_CUDA
    ipc.factory = [](const OneSidedArgs& a) {
      const LaneStreams s = lane_streams(a.backend);
      return OneSidedSetup{
          make_ipc_onesided(a.shard, s.compute, s.pull, s.push, a.deterministic, ipc_tuning(a)), 0};
    };
    staged.factory = [](const OneSidedArgs& a) {
      const LaneStreams s = lane_streams(a.backend);
      return OneSidedSetup{make_staged_onesided(a.shard, s.compute, s.pull, s.push), 0};
    };
    node_aware.factory = [](const OneSidedArgs& a) {
      const LaneStreams s = lane_streams(a.backend);
      return OneSidedSetup{
          make_node_aware_onesided(a.world, a.shard, a.declared_ranks_per_node, s.compute, s.pull,
                                   s.push, a.deterministic, ipc_tuning(a)),
          0};
    };
#endif
    t.add(std::move(ipc));
    t.add(std::move(staged));
    t.add(std::move(node_aware));
    return t;
  }();
  return table;
}

namespace {

std::string memory_of(bool device) { return device ? "device" : "host"; }

// ConfigError(key, ...) unless transport `row` moves the memory a `backend` backend
// (device memory or not) works on.
template <class Row>
void check_memory(const Registry<Row>& table, const std::string& key, const Row& row,
                  const std::string& backend, bool device) {
  if (row.needs.device_memory == device) return;
  std::vector<std::string> backends, here{"auto"};
  for (const auto& b : compute_backends().rows())
    if (b.needs.device_memory == row.needs.device_memory) backends.push_back(b.name);
  for (const auto& r : table.rows())
    if (r.needs.device_memory == device) here.push_back(r.name);
  throw ConfigError(key, "\"" + row.name + "\" needs a compute.backend on " +
                             memory_of(row.needs.device_memory) + " memory (" +
                             Registry<Row>::join(backends) + "), but compute.backend = \"" +
                             backend + "\" works on " + memory_of(device) +
                             " memory (allowed here: " + Registry<Row>::join(here) + ")");
}

template <class Row>
const Row& usable(const Registry<Row>& table, const std::string& key, const std::string& name,
                  const Device& backend) {
  const Row& row = table.at(name, key);
  check_memory(table, key, row, backend.name(), backend.memory() == MemorySpace::device);
  return row;
}

}  // namespace

std::unique_ptr<Collectives> make_collectives(const std::string& name,
                                              const CollectivesArgs& args) {
  return usable(collective_transports(), "comm.collectives", name, args.backend).factory(args);
}

OneSidedSetup make_onesided(const std::string& name, const OneSidedArgs& args) {
  return usable(onesided_transports(), "comm.onesided", name, args.backend).factory(args);
}

void check_transport_memory(const std::string& backend, const std::string& collectives,
                            const std::string& onesided) {
  const BackendRow* b = compute_backends().find_any(backend);
  if (b == nullptr) return;  // not a backend: the choice check names compute.backend
  const bool device = b->needs.device_memory;
  if (const auto* c = collective_transports().find_any(collectives))
    check_memory(collective_transports(), "comm.collectives", *c, backend, device);
  if (const auto* o = onesided_transports().find_any(onesided))
    check_memory(onesided_transports(), "comm.onesided", *o, backend, device);
}

}  // namespace minipt
