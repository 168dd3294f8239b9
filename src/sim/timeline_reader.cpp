#include "sim/timeline_reader.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "config/toml.hpp"
#include "core/error.hpp"
#include "trace/events.hpp"
#include "trace/h5.hpp"

namespace minipt {
namespace {

// A damaged file: the message without the path (read_timeline_file adds it).
struct Damaged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string object_class(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return "an integer";
    case H5T_FLOAT:
      return "a float";
    case H5T_STRING:
      return "a string";
    default:
      return "another type";
  }
}

// The attribute `name`, open, after checking it exists and is a scalar.
h5::H5Id scalar_attr(hid_t file, const std::string& name) {
  if (H5Aexists(file, name.c_str()) <= 0) throw Damaged("attribute " + name + " is missing");
  h5::H5Id a(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose, "H5Aopen");
  h5::H5Id space(H5Aget_space(a), H5Sclose, "H5Aget_space");
  if (H5Sget_simple_extent_type(space) != H5S_SCALAR)
    throw Damaged("attribute " + name + " is not a scalar (an array or empty attribute)");
  return a;
}

// An integer attribute in [lo, hi] (an integral float is accepted: h5py writes 2e9 so).
int64_t int_attr(hid_t file, const std::string& name, double lo, double hi) {
  h5::H5Id a = scalar_attr(file, name);
  h5::H5Id type(H5Aget_type(a), H5Tclose, "H5Aget_type");
  const H5T_class_t c = H5Tget_class(type);
  if (c != H5T_INTEGER && c != H5T_FLOAT)
    throw Damaged("attribute " + name + " is " + object_class(type) + ", not an integer");
  double v = 0;
  h5::check(H5Aread(a, H5T_NATIVE_DOUBLE, &v), "H5Aread");
  if (!std::isfinite(v) || v != std::floor(v) || v < lo || v > hi) {
    char b[160];
    std::snprintf(b, sizeof b, "attribute %s = %.17g is not an integer in [%.17g, %.17g]",
                  name.c_str(), v, lo, hi);
    throw Damaged(b);
  }
  return static_cast<int64_t>(v);
}

std::string string_attr(hid_t file, const std::string& name) {
  h5::H5Id a = scalar_attr(file, name);
  h5::H5Id type(H5Aget_type(a), H5Tclose, "H5Aget_type");
  if (H5Tget_class(type) != H5T_STRING)
    throw Damaged("attribute " + name + " is " + object_class(type) + ", not a string");
  try {
    return h5::read_attr_string(file, name);
  } catch (const std::runtime_error&) {
    throw Damaged("attribute " + name + " cannot be read as a string");
  }
}

// Reads the columns of one table, all of one length, each a 1-D integer dataset, as int64.
class Table {
 public:
  Table(hid_t file, std::string group, uint64_t max_rows)
      : file_(file), group_(std::move(group)), max_rows_(max_rows) {}

  std::vector<int64_t> column(const std::string& name) {
    const std::string path = group_ + "/" + name;
    if (!h5::exists(file_, group_) || !h5::exists(file_, path))
      throw Damaged("column " + path + " is missing");
    hid_t id = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
    if (id < 0) throw Damaged(path + " is not a dataset");
    h5::H5Id ds(id, H5Dclose, "H5Dopen");
    h5::H5Id space(H5Dget_space(ds), H5Sclose, "H5Dget_space");
    h5::H5Id type(H5Dget_type(ds), H5Tclose, "H5Dget_type");
    if (H5Tget_class(type) != H5T_INTEGER)
      throw Damaged("column " + path + " is " + object_class(type) + ", not an integer column");
    if (H5Sget_simple_extent_ndims(space) != 1)
      throw Damaged("column " + path + " is not one-dimensional");
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space, &n, nullptr);
    if (n > max_rows_)
      throw Damaged("column " + path + " claims " + std::to_string(n) +
                    " rows, more than the file's size can hold");
    if (rows_ < 0) {
      rows_ = static_cast<int64_t>(n);
      first_ = path;
    } else if (static_cast<int64_t>(n) != rows_) {
      throw Damaged("columns of unequal length: " + path + " has " + std::to_string(n) + " rows, " +
                    first_ + " " + std::to_string(rows_));
    }
    std::vector<int64_t> out(n);
    if (n > 0 && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      throw Damaged("column " + path + " cannot be read");
    return out;
  }

 private:
  hid_t file_;
  std::string group_;
  uint64_t max_rows_;
  int64_t rows_ = -1;
  std::string first_;
};

// `v` narrowed to T after checking every value is in [lo, hi].
template <typename T>
std::vector<T> ranged(const std::vector<int64_t>& v, const std::string& column, int64_t lo,
                      int64_t hi) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < lo || v[i] > hi)
      throw Damaged(column + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                    " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out[i] = static_cast<T>(v[i]);
  }
  return out;
}

void ends_after_starts(const std::vector<int64_t>& t0, const std::vector<int64_t>& t1,
                       const std::string& table) {
  for (size_t i = 0; i < t0.size(); ++i)
    if (t1[i] < t0[i])
      throw Damaged(table + " row " + std::to_string(i) + " ends before it starts (t_end_ns " +
                    std::to_string(t1[i]) + " < t_start_ns " + std::to_string(t0[i]) + ")");
}

void read_into(TimelineFile& t, hid_t file, uint64_t max_rows) {
  t.schema_version = static_cast<int>(int_attr(file, "schema_version", 1, kSchemaVersion));
  t.world = static_cast<int>(int_attr(file, "world_size", 1, 1e6));
  t.warmup = static_cast<int>(int_attr(file, "warmup_steps", 0, 1e6));
  t.devices = string_attr(file, "devices");
  t.backend = string_attr(file, "backend");
  t.hosts = string_attr(file, "hosts");
  t.config_toml = string_attr(file, "config_toml");
  t.device = t.devices.substr(0, t.devices.find(';'));
  std::set<std::string> distinct;
  std::stringstream hs(t.hosts);
  for (std::string h; std::getline(hs, h, ';');) distinct.insert(h);
  t.one_host = distinct.size() <= 1;
  toml::Table cfg;
  try {
    cfg = toml::parse(t.config_toml, "config_toml");
  } catch (const ConfigError& e) {
    throw Damaged(std::string("attribute config_toml is not TOML (") + e.what() + ")");
  }
  auto get_int = [&](const std::string& k, int64_t hi) {
    auto it = cfg.find(k);
    if (it == cfg.end() || it->second.type != toml::Value::Type::integer)
      throw Damaged("config_toml lacks " + k);
    if (it->second.i < 1 || it->second.i > hi)
      throw Damaged("config_toml's " + k + " = " + std::to_string(it->second.i) +
                    " is outside [1, " + std::to_string(hi) + "]");
    return static_cast<int>(it->second.i);
  };
  t.shape.layers = get_int("model.layers", 1024);
  t.shape.hidden = get_int("model.hidden", 1000000);
  t.shape.heads = get_int("model.heads", 10000);
  t.shape.kv_heads = get_int("model.kv_heads", 10000);
  t.shape.ffn = get_int("model.ffn", 10000000);
  t.shape.vocab = get_int("model.vocab", 10000000);
  if (t.shape.hidden % t.shape.heads != 0 || t.shape.heads % t.shape.kv_heads != 0)
    throw Damaged(
        "config_toml's model shape is inconsistent (model.heads must divide "
        "model.hidden, model.kv_heads model.heads)");
  if (auto it = cfg.find("model.scale"); it != cfg.end()) {
    const toml::Value& v = it->second;
    t.scale = v.type == toml::Value::Type::floating  ? v.f
              : v.type == toml::Value::Type::integer ? static_cast<double>(v.i)
                                                     : -1;
    if (!(t.scale > 0 && t.scale <= 1))
      throw Damaged("config_toml's model.scale = " + v.to_toml() + " is outside (0, 1]");
  }
  const int64_t world = t.world;
  const int64_t units = t.shape.num_units();
  const int64_t kMax32 = std::numeric_limits<int32_t>::max();
  const int64_t kMax64 = std::numeric_limits<int64_t>::max();

  Table ev(file, "events", max_rows);
  t.rank = ranged<int32_t>(ev.column("rank"), "events/rank", 0, world - 1);
  t.step = ranged<int32_t>(ev.column("step"), "events/step", 0, kMax32);
  t.mb = ranged<int32_t>(ev.column("microbatch"), "events/microbatch", -1, kMax32);
  t.unit = ranged<int32_t>(ev.column("unit"), "events/unit", -1, units - 1);
  t.kind = ranged<int8_t>(ev.column("kind"), "events/kind", 0,
                          static_cast<int64_t>(kEventKindNames.size()) - 1);
  t.t0 = ev.column("t_start_ns");
  t.t1 = ev.column("t_end_ns");
  ends_after_starts(t.t0, t.t1, "events");
  t.bytes = ranged<int64_t>(ev.column("bytes"), "events/bytes", 0, kMax64);
  t.tokens = ranged<int64_t>(ev.column("tokens"), "events/tokens", 0, kMax64);

  Table wl(file, "workload", max_rows);
  t.w_step = ranged<int32_t>(wl.column("step"), "workload/step", 0, kMax32);
  t.w_rank = ranged<int32_t>(wl.column("rank"), "workload/rank", 0, world - 1);
  t.w_mb = ranged<int32_t>(wl.column("microbatch"), "workload/microbatch", 0, kMax32);
  t.w_len = ranged<int64_t>(wl.column("length"), "workload/length", 1, kMax64);

  Table st(file, "steps", max_rows);
  t.s_step = ranged<int32_t>(st.column("step"), "steps/step", 0, kMax32);
  t.s_rank = ranged<int32_t>(st.column("rank"), "steps/rank", 0, world - 1);
  t.s_mbs = ranged<int32_t>(st.column("microbatches"), "steps/microbatches", 0, kMax32);
  t.s_t0 = st.column("t_start_ns");
  t.s_t1 = st.column("t_end_ns");
  ends_after_starts(t.s_t0, t.s_t1, "steps");
  const std::set<int32_t> ranks(t.s_rank.begin(), t.s_rank.end());
  if (static_cast<int64_t>(ranks.size()) != world)
    throw Damaged("world_size = " + std::to_string(world) + " but /steps holds " +
                  std::to_string(ranks.size()) + " rank(s)");
}

}  // namespace

TimelineFile read_timeline_file(const std::string& path, const std::string& key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ConfigError(key, path + ": cannot open the timeline (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode))
    throw ConfigError(key, path +
                               ": the timeline is not a regular file (a FIFO, device, "
                               "socket or directory)");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw ConfigError(key, path + ": cannot open as HDF5 (a minipt timeline?)");
  TimelineFile t;
  t.path = path;
  // A table holds at most what the file's bytes can encode (deflate: about 1032:1).
  const uint64_t max_rows = 1100 * static_cast<uint64_t>(st.st_size) / 8 + (uint64_t{1} << 23);
  try {
    h5::H5Id file(f, H5Fclose, "H5Fopen");
    read_into(t, file, max_rows);
  } catch (const Damaged& e) {
    throw ConfigError(key, path + ": damaged timeline: " + e.what());
  } catch (const std::bad_alloc&) {
    throw ConfigError(key, path + ": damaged timeline: a table too large to read");
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const ConfigError*>(&e)) throw;
    throw ConfigError(key, path + ": not a readable minipt timeline (" + e.what() + ")");
  }
  return t;
}

}  // namespace minipt
