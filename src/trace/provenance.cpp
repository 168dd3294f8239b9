#include "trace/provenance.hpp"

#include <cmath>
#include <ctime>

#ifndef MINIPT_VERSION
#error "MINIPT_VERSION must be defined (CMake passes the project version)"
#endif
#ifndef MINIPT_GIT_REVISION
#define MINIPT_GIT_REVISION "unknown"
#endif

namespace minipt {

namespace {

// One string per rank, in rank order, on rank 0; empty elsewhere.
std::vector<std::string> gather_strings(const std::string& mine, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<size_t>(world)), displs(static_cast<size_t>(world));
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm);
  int total = 0;
  for (int r = 0; r < world; ++r) {
    displs[static_cast<size_t>(r)] = total;
    total += lens[static_cast<size_t>(r)];
  }
  std::string all(static_cast<size_t>(rank == 0 ? total : 0), '\0');
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0,
              comm);
  std::vector<std::string> out;
  for (int r = 0; rank == 0 && r < world; ++r)
    out.push_back(all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                             static_cast<size_t>(lens[static_cast<size_t>(r)])));
  return out;
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, static_cast<size_t>(len > 0 ? len : 0));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

nlohmann::json provenance(MPI_Comm comm, const std::string& device,
                          const std::vector<std::string>& command_line) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int host_len = 0;
  MPI_Get_processor_name(host, &host_len);
  const auto hosts = gather_strings(std::string(host, static_cast<size_t>(host_len)), comm);
  const auto devices = gather_strings(device, comm);
  if (rank != 0) return nlohmann::json::object();
  nlohmann::json p = {{"minipt_version", MINIPT_VERSION},
                      {"git_revision", MINIPT_GIT_REVISION},
                      {"created_utc", utc_now()},
                      {"world_size", world},
                      {"mpi_library", mpi_library_version()},
                      {"hosts", hosts},
                      {"devices", devices}};
  if (!command_line.empty()) p["command_line"] = command_line;
  return p;
}

nlohmann::json finite_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return b;
}

}  // namespace minipt
