// The untimed gathers to one rank (timelines, summaries, parameters, dumps, provenance):
// every rank's array, in rank order, on the root. One routine for all of them: the sizes
// by MPI_Gather, then each rank's bytes as point-to-point messages of at most
// `chunk_bytes` (MPI's counts are ints: a payload of 2 GiB or more goes in pieces) under
// the tag kGatherTag. Header-only, so that the GPU benchmarks built without the library
// (tests/gpu_comm) can use it too.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace minipt {

// The MPI tag of gather_to_root's messages (no other point-to-point traffic uses it).
inline constexpr int kGatherTag = 77;
// The largest message gather_to_root sends by default (1 GiB).
inline constexpr int64_t kGatherChunkBytes = int64_t{1} << 30;

// What gather_to_root returns on the root: every rank's elements concatenated in rank
// order, rank r's at [begin[r], begin[r+1]).
template <class T>
struct Gathered {
  std::vector<T> values;
  std::vector<size_t> begin;  // world + 1 offsets; empty off the root
  std::span<const T> of(int rank) const {
    const auto r = static_cast<size_t>(rank);
    return std::span<const T>(values).subspan(begin[r], begin[r + 1] - begin[r]);
  }
};

// Collective over `comm`: `mine` of every rank on `root` (elsewhere an empty Gathered).
// T must be trivially copyable (it travels as bytes); messages carry at most
// `chunk_bytes` (1 .. INT_MAX, else std::invalid_argument on every rank).
template <class T>
Gathered<T> gather_to_root(MPI_Comm comm, std::span<const T> mine, int root = 0,
                           int64_t chunk_bytes = kGatherChunkBytes) {
  static_assert(std::is_trivially_copyable_v<T>, "gather_to_root moves bytes");
  if (chunk_bytes <= 0 || chunk_bytes > INT_MAX)
    throw std::invalid_argument("gather_to_root: chunk_bytes " + std::to_string(chunk_bytes) +
                                " is outside 1.." + std::to_string(INT_MAX));
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  const auto bytes = static_cast<int64_t>(mine.size_bytes());
  std::vector<int64_t> sizes(static_cast<size_t>(world));
  MPI_Gather(&bytes, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, comm);
  // Each message below the chunk size: a count MPI's int holds.
  const auto pieces = [&](auto* data, int64_t n, auto&& move) {
    for (int64_t at = 0; at < n; at += chunk_bytes)
      move(data + at, static_cast<int>(std::min(chunk_bytes, n - at)));
  };
  Gathered<T> out;
  if (rank != root) {
    pieces(reinterpret_cast<const char*>(mine.data()), bytes,
           [&](const char* p, int n) { MPI_Send(p, n, MPI_BYTE, root, kGatherTag, comm); });
    return out;
  }
  out.begin.assign(static_cast<size_t>(world) + 1, 0);
  for (size_t r = 0; r < sizes.size(); ++r)
    out.begin[r + 1] = out.begin[r] + static_cast<size_t>(sizes[r]) / sizeof(T);
  out.values.resize(out.begin.back());
  for (int r = 0; r < world; ++r) {
    T* dst = out.values.data() + out.begin[static_cast<size_t>(r)];
    if (r == root) {
      std::copy(mine.begin(), mine.end(), dst);
      continue;
    }
    pieces(reinterpret_cast<char*>(dst), sizes[static_cast<size_t>(r)], [&](char* p, int n) {
      MPI_Recv(p, n, MPI_BYTE, r, kGatherTag, comm, MPI_STATUS_IGNORE);
    });
  }
  return out;
}

template <class T>
Gathered<T> gather_to_root(MPI_Comm comm, const std::vector<T>& mine, int root = 0,
                           int64_t chunk_bytes = kGatherChunkBytes) {
  return gather_to_root(comm, std::span<const T>(mine), root, chunk_bytes);
}

}  // namespace minipt
