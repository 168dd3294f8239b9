// Helpers shared by the GPU transports: error checks that throw with the failing call
// and its place, and the pool of CUDA events behind Request handles.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "comm/transport.hpp"

namespace minipt::gpucomm {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define MINIPT_CUDA_CHECK(call)                                                   \
  do {                                                                            \
    const cudaError_t minipt_cuda_err_ = (call);                                  \
    if (minipt_cuda_err_ != cudaSuccess)                                          \
      ::minipt::gpucomm::throw_cuda(minipt_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

[[noreturn]] inline void throw_mpi(int err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           ": MPI error " + std::to_string(err));
}

#define MINIPT_MPI_CHECK(call)                                                  \
  do {                                                                          \
    const int minipt_mpi_err_ = (call);                                         \
    if (minipt_mpi_err_ != MPI_SUCCESS)                                         \
      ::minipt::gpucomm::throw_mpi(minipt_mpi_err_, #call, __FILE__, __LINE__); \
  } while (0)

// Requests are indices of CUDA events. An event goes back to the free list as soon as
// wait() has queued the compute stream's wait on it: cudaStreamWaitEvent captures the
// event's state at the call, so re-recording the event later cannot change what the
// compute stream waits for. Events of requests that are never waited on stay in use
// (a leak of one event each, which the trainer never causes: it waits on everything).
class EventPool {
 public:
  EventPool() = default;
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  ~EventPool() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }

  // Records a fresh event on `stream` and returns its handle.
  Request record(cudaStream_t stream) {
    size_t slot;
    if (free_.empty()) {
      cudaEvent_t e = nullptr;
      MINIPT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      events_.push_back(e);
      slot = events_.size() - 1;
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    MINIPT_CUDA_CHECK(cudaEventRecord(events_[slot], stream));
    return static_cast<Request>(slot);
  }

  // `stream` waits for the request's event; the handle is then free again.
  void stream_wait(Request r, cudaStream_t stream) {
    if (r == kNoRequest) return;
    if (r < 0 || static_cast<size_t>(r) >= events_.size())
      throw std::invalid_argument("wait on an unknown request " + std::to_string(r));
    MINIPT_CUDA_CHECK(cudaStreamWaitEvent(stream, events_[static_cast<size_t>(r)], 0));
    free_.push_back(static_cast<size_t>(r));
  }

  size_t in_use() const { return events_.size() - free_.size(); }

 private:
  std::vector<cudaEvent_t> events_;
  std::vector<size_t> free_;
};

// `later` waits for everything queued on `earlier` so far (a stream-order edge between
// two streams, through one reusable event).
class StreamEdge {
 public:
  StreamEdge() { MINIPT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  StreamEdge(const StreamEdge&) = delete;
  StreamEdge& operator=(const StreamEdge&) = delete;
  ~StreamEdge() { cudaEventDestroy(event_); }
  void order(cudaStream_t earlier, cudaStream_t later) {
    MINIPT_CUDA_CHECK(cudaEventRecord(event_, earlier));
    MINIPT_CUDA_CHECK(cudaStreamWaitEvent(later, event_, 0));
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace minipt::gpucomm
