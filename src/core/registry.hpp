// One table per kind of variant (compute backends, collective transports, one-sided
// transports): every variant is one row, registered in one place, and everything that
// needs to know the variants (configuration choices, --help, --version, `auto`,
// construction) reads the table instead of comparing names.
//
// A row names a variant whether or not this build compiled it in: --help and the
// configuration accept every variant of the project, so that one config file serves
// every build. A row whose code is not in this build has no factory; at() rejects it
// with a ConfigError that lists the variants this build has.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace minipt {

// What a variant needs before it can be used.
struct VariantNeeds {
  bool cuda_build = false;    // its code exists only in a CUDA build (MINIPT_HAVE_CUDA)
  bool kokkos_build = false;  // its code exists only in a Kokkos build (MINIPT_HAVE_KOKKOS)
  // Backends: their buffers live in device memory. Transports: the buffers they move
  // must live in device memory. Else host memory, on both sides.
  bool device_memory = false;
  bool single_node = false;  // every rank it connects must be on one node
};

// Row: a struct with at least
//   std::string name, description;   (description: one line)
//   VariantNeeds needs;
//   int priority;                    (for `auto`: the highest fitting row wins; <= 0: never)
//   std::function<...> factory;      (empty: not compiled into this build)
template <class Row>
class Registry {
 public:
  // Adds a row at the end (registration order is the order of names() and of --help).
  // Rows are added before the first configuration is loaded (tables built on first use,
  // or static registration before main). Throws std::logic_error on a duplicate name.
  Row& add(Row row) {
    if (row.name.empty()) throw std::logic_error("Registry::add: a row needs a name");
    if (find_any(row.name) != nullptr)
      throw std::logic_error("Registry::add: '" + row.name + "' is registered twice");
    rows_.push_back(std::move(row));
    return rows_.back();
  }

  const std::vector<Row>& rows() const { return rows_; }

  // Every variant, built or not, in registration order.
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& r : rows_) v.push_back(r.name);
    return v;
  }
  // The variants this build can construct.
  std::vector<std::string> built_names() const {
    std::vector<std::string> v;
    for (const auto& r : rows_)
      if (built(r)) v.push_back(r.name);
    return v;
  }
  // "name: description; name: description; ..." (for --help).
  std::string described() const {
    std::string s;
    for (const auto& r : rows_) s += (s.empty() ? "" : "; ") + r.name + ": " + r.description;
    return s;
  }
  static bool built(const Row& r) { return static_cast<bool>(r.factory); }

  // The row of `name` if this build has it, else nullptr.
  const Row* find(std::string_view name) const {
    const Row* r = find_any(name);
    return r != nullptr && built(*r) ? r : nullptr;
  }
  // The row of `name` whether built or not (its needs are known either way).
  const Row* find_any(std::string_view name) const {
    for (const auto& r : rows_)
      if (r.name == name) return &r;
    return nullptr;
  }

  // The row of `name`, or ConfigError(key, "'x' is not available in this build
  // (allowed: a|b)") listing the variants this build has.
  const Row& at(const std::string& name, const std::string& key) const {
    if (const Row* r = find(name)) return *r;
    throw ConfigError(key, "'" + name + "' is not available in this build (allowed: " +
                               join(built_names()) + ")");
  }

  // The row `auto` resolves to: the highest priority (> 0) among the rows whose needs
  // `fits(needs)` accepts, the first registered on a tie; nullptr when none fits.
  // Whether a row is built is left to `fits` (resolution is pure: choosing for a build
  // that lacks the variant fails later, at construction, through at()).
  template <class Fits>
  const Row* pick_auto(Fits&& fits) const {
    const Row* best = nullptr;
    for (const auto& r : rows_)
      if (r.priority > 0 && fits(r.needs) && (best == nullptr || r.priority > best->priority))
        best = &r;
    return best;
  }

  static std::string join(const std::vector<std::string>& v, const std::string& sep = "|") {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
  }

 private:
  std::vector<Row> rows_;
};

}  // namespace minipt
