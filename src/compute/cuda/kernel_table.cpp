#include "compute/cuda/kernel_table.hpp"

#include <mutex>

namespace minipt::cuda {

namespace {
struct Table {
  std::mutex mutex;
  bool record = true;
  uint64_t generation = 0;
  std::map<std::string, std::string> entries;
};
Table& table() {
  static Table t;
  return t;
}
}  // namespace

std::optional<std::string> kernel_choice(const std::string& key) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  const auto it = t.entries.find(key);
  if (it == t.entries.end()) return std::nullopt;
  return it->second;
}

void record_kernel_choice(const std::string& key, const std::string& value) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.entries.emplace(key, value);
}

bool kernel_tuning_records() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.record;
}

void set_kernel_choices(std::map<std::string, std::string> entries, bool record) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.entries = std::move(entries);
  t.record = record;
  ++t.generation;
}

std::map<std::string, std::string> kernel_choice_entries() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.entries;
}

uint64_t kernel_choices_generation() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.generation;
}

}  // namespace minipt::cuda
