// Timeline events: what a rank did, on which lane, from when to when (ns on the
// run's global clock). The HDF5 layout that stores them is documented in README.md.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace minipt {

// Stored as int8 in /events/kind; the names are stored in the attribute
// /events.kind_names, in this order. Append only: analysis reads the names.
enum class EventKind : int8_t {
  forward = 0,           // compute lane: unit forward on a microbatch
  backward = 1,          // compute lane: unit backward
  recompute = 2,         // compute lane: activation recomputation before backward
  gather = 3,            // pull lane: fsdp all-gather of a unit's parameters
  reduce_scatter = 4,    // push lane: fsdp reduce-scatter of a unit's gradients
  get = 5,               // pull lane: odc one-sided pull of a unit's shards
  accumulate = 6,        // push lane: odc one-sided push/accumulate of a unit's gradients
  wait = 7,              // compute lane: compute stalled on communication
  barrier = 8,           // compute lane: waiting for all ranks (odc minibatch barrier)
  optimizer = 9,         // compute lane: AdamW on the rank's shard
  allreduce = 10,        // compute lane: small all-reduce (gradient norm, loss)
  accumulate_grad = 11,  // compute lane: adding a microbatch gradient into the shard
  replica_reduce = 12,   // compute lane: hybrid sharding's all-reduce of the gradient
                         // shards across replicas (after the last microbatch)
};
constexpr std::array<std::string_view, 13> kEventKindNames = {
    "forward",   "backward",        "recompute",     "gather",  "reduce_scatter",
    "get",       "accumulate",      "wait",          "barrier", "optimizer",
    "allreduce", "accumulate_grad", "replica_reduce"};
// /events kinds and root attributes as documented in README.md ("HDF5 timeline schema").
constexpr int kSchemaVersion = 4;

// Kinds counted as compute-busy time for utilisation.
constexpr bool is_compute_kind(EventKind k) {
  return k == EventKind::forward || k == EventKind::backward || k == EventKind::recompute ||
         k == EventKind::optimizer || k == EventKind::accumulate_grad;
}

constexpr std::array<std::string_view, 3> kLaneNames = {"compute", "pull", "push"};

struct Event {
  int32_t rank = 0;
  int32_t step = 0;
  int32_t microbatch = -1;  // -1: not tied to a microbatch
  int32_t unit = -1;        // 0 embedding, 1..L blocks, L+1 head; -1: none
  EventKind kind = EventKind::forward;
  int8_t lane = 0;
  int64_t t_start_ns = 0;
  int64_t t_end_ns = 0;
  int64_t bytes = 0;
  int64_t tokens = 0;
  double flops = 0;
};

}  // namespace minipt
