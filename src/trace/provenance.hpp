// Provenance of a run or benchmark, and the one way minipt turns JSON into text. Shared by
// the run summary (NAME.json, app/results.hpp) and the comm benchmark
// (tests/bench/comm_bench.cu), which is built without the rest of minipt: this file
// needs MPI and nlohmann-json only.
#pragma once

#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace minipt {

// Collective over `comm`: every rank passes its own device name. Rank 0 gets
//   minipt_version, git_revision, created_utc (ISO 8601, UTC), world_size,
//   mpi_library (MPI_Get_library_version), hosts and devices (one string per rank, in
//   rank order), ranks (per rank: rank, host, local_rank on its node, device,
//   cuda_visible_devices or null, pid), software (mpi_library, mpi_standard, hdf5, kokkos,
//   cuda_runtime, cuda_driver, nccl, cudnn, compiler, cuda_compiler: run-time versions
//   where the library reports one, "not built" for what the build lacks), build (type,
//   cxx_flags, warnings, options), environment (rank 0's SLURM_*, OMPI_*, PMIX_*, UCX_*,
//   NCCL_*, FI_*, OMP_*, CUDA_VISIBLE_DEVICES, ... variables) and command_line (the
//   arguments, when `command_line` is not empty); git_revision is minipt's own tree's
//   (`git describe --always --dirty`, "unknown (...)" outside its own git work tree);
// the other ranks get an empty object.
nlohmann::json provenance(MPI_Comm comm, const std::string& device,
                          const std::vector<std::string>& command_line = {});

// minipt's own revision, as in git_revision above: computed at every build
// (cmake/revision.cmake), so a commit needs no re-configure. Where this file is built on
// its own (the comm benchmark, tests/gpu_comm): MINIPT_GIT_REVISION if that build
// defines it, else "unknown (...)".
std::string source_revision();

// A finite number, or null: NaN and ±inf have no JSON spelling.
nlohmann::json finite_or_null(double value);

// JSON text as minipt writes it: UTF-8, non-ASCII kept as is, and every byte sequence that
// is not valid UTF-8 replaced by U+FFFD (never written raw, never an exception). `indent`
// as nlohmann::json::dump: -1 is one line.
std::string json_text(const nlohmann::json& value, int indent);

// The current time as YYYY-MM-DDTHH:MM:SSZ.
std::string utc_now();

// A fresh run identity: 32 lowercase hex digits (128 bits from std::random_device). A run's
// .h5 (attribute run_id) and .json (key run_id) carry the same one, so a pair written by
// different runs (concurrent runs with one run.out, a full disk between the two writes)
// is detectable.
std::string new_run_id();

}  // namespace minipt
