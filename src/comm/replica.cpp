#include "comm/replica.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>
#include <vector>

#ifdef MINIPT_HAVE_CUDA
#include "comm/cuda/gpu_transports.hpp"
#endif

namespace minipt {

ShardGroups::ShardGroups(MPI_Comm world, int size) : shard_size(size) {
  int rank = 0, n = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &n);
  replicas = n / size;
  shard_rank = rank % size;
  MPI_Comm_split(world, rank / size, rank, &shard);
  MPI_Comm_split(world, rank % size, rank, &replica);
}

ShardGroups::~ShardGroups() {
  if (shard != MPI_COMM_NULL) MPI_Comm_free(&shard);
  if (replica != MPI_COMM_NULL) MPI_Comm_free(&replica);
}

namespace {

class MpiReplicaComm final : public ReplicaComm {
 public:
  MpiReplicaComm(Device& backend, MPI_Comm replica, float* data, int64_t n, bool staged)
      : backend_(backend), replica_(replica), data_(data), staged_(staged) {
    if (staged_) staging_.resize(static_cast<size_t>(n));
  }
  ~MpiReplicaComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && !requests_.empty())
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }

  std::string name() const override { return staged_ ? "mpi-staged" : "mpi"; }

  void start(int64_t offset, int64_t n) override {
    float* host = data_ + offset;
    if (staged_) {
      backend_.time_source().synchronize();  // the slice is complete on the device
      host = staging_.data() + offset;
      backend_.copy_to_host(host, data_ + offset, static_cast<size_t>(n) * sizeof(float));
      slices_.emplace_back(offset, n);
    }
    for (int64_t done = 0; done < n;) {
      const int chunk = static_cast<int>(std::min<int64_t>(n - done, INT_MAX / 2));
      MPI_Request r = MPI_REQUEST_NULL;
      MPI_Iallreduce(MPI_IN_PLACE, host + done, chunk, MPI_FLOAT, MPI_SUM, replica_, &r);
      requests_.push_back(r);
      done += chunk;
    }
  }

  void progress() override {
    if (requests_.empty()) return;
    int flag = 0;
    MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE);
  }

  void wait_all() override {
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
    for (const auto& [offset, n] : slices_)
      backend_.copy_from_host(data_ + offset, staging_.data() + offset,
                              static_cast<size_t>(n) * sizeof(float));
    slices_.clear();
  }

 private:
  Device& backend_;
  MPI_Comm replica_;
  float* data_;
  bool staged_;
  std::vector<float> staging_;                       // device memory: the host copy
  std::vector<std::pair<int64_t, int64_t>> slices_;  // staged slices to copy back
  std::vector<MPI_Request> requests_;
};

}  // namespace

Registry<ReplicaRow>& replica_transports() {
  static Registry<ReplicaRow> table = [] {
    Registry<ReplicaRow> t;
    t.add({.name = "mpi",
           .description = "MPI_Iallreduce on host memory",
           .needs = {},
           .priority = 10,
           .factory = [](const ReplicaArgs& a) -> std::unique_ptr<ReplicaComm> {
             return std::make_unique<MpiReplicaComm>(a.backend, a.replica, a.data, a.count, false);
           }});
    t.add({.name = "mpi-staged",
           .description = "MPI_Iallreduce on device memory staged through the host",
           .needs = {.device_memory = true},
           .priority = 10,
           .factory = [](const ReplicaArgs& a) -> std::unique_ptr<ReplicaComm> {
             return std::make_unique<MpiReplicaComm>(a.backend, a.replica, a.data, a.count, true);
           }});
    ReplicaRow nccl{.name = "nccl",
                    .description = "NCCL all-reduce on device memory, in place",
                    .needs = {.cuda_build = true, .device_memory = true},
                    .priority = 20};
#ifdef MINIPT_HAVE_CUDA
    nccl.factory = [](const ReplicaArgs& a) {
      return make_nccl_replica_comm(a.replica, lane_streams(a.backend).compute, a.data);
    };
#endif
    t.add(std::move(nccl));
    return t;
  }();
  return table;
}

std::unique_ptr<ReplicaComm> make_replica_comm(const std::string& name, const ReplicaArgs& args) {
  // The name comes from choose_transports, which picks for the backend's memory: a row
  // this build lacks or of the other memory is a programming error.
  const ReplicaRow* row = replica_transports().find(name);
  const bool device = args.backend.memory() == MemorySpace::device;
  if (row == nullptr || row->needs.device_memory != device)
    throw std::logic_error("make_replica_comm: no replica transport '" + name + "' for " +
                           (device ? "device" : "host") + " memory in this build (built: " +
                           Registry<ReplicaRow>::join(replica_transports().built_names()) + ")");
  return row->factory(args);
}

}  // namespace minipt
