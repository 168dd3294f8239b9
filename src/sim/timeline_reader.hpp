// The one hardened reader of a minipt HDF5 timeline (issue 31), for `minipt calibrate`:
// whatever the file holds, it returns a timeline whose every column and attribute is
// within the schema (README.md, "HDF5 timeline schema"), or throws ConfigError(key,
// "<path>: <what is wrong>") (exit 2). Never reads past a column, never allocates more
// than the file can hold.
//
// Checked: the path is a regular file (a FIFO or device is refused before it is opened);
// the root attributes are scalars of the right class (integers: an integer, or a float
// holding an integral value; strings: a string); schema_version is one the analysis
// knows (1..kSchemaVersion); world_size in 1..1e6, warmup_steps >= 0; config_toml parses
// and holds the model shape (model.layers, hidden, heads, kv_heads, ffn, vocab positive
// integers; model.scale in (0, 1]); every column is a 1-D integer dataset, the columns of
// one table have one length, and a table holds at most what its file's bytes can encode
// (rows <= 1100 x the file's size in bytes / 8 + 2^23: deflate's own bound, with room for
// small files); /events: rank in [0, world_size), step >= 0, microbatch >= -1, unit in
// [-1, units), kind a known code, t_end_ns >= t_start_ns, bytes and tokens >= 0;
// /workload: step >= 0, rank in [0, world_size), microbatch >= 0, length >= 1; /steps:
// rank in [0, world_size) and every rank present (world_size consistent with /steps),
// step >= 0, microbatches >= 0, t_end_ns >= t_start_ns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/shape.hpp"

namespace minipt {

struct TimelineFile {
  std::string path;
  int schema_version = 0;
  int world = 1;
  int warmup = 0;
  std::string devices, backend, hosts, config_toml;
  std::string device;    // the first rank's entry of devices
  bool one_host = true;  // every rank on one host (hosts has one distinct entry)
  ModelShape shape;
  double scale = 1.0;
  // /events
  std::vector<int32_t> rank, step, mb, unit;
  std::vector<int8_t> kind;
  std::vector<int64_t> t0, t1, bytes, tokens;
  // /workload
  std::vector<int32_t> w_step, w_rank, w_mb;
  std::vector<int64_t> w_len;
  // /steps
  std::vector<int32_t> s_step, s_rank, s_mbs;
  std::vector<int64_t> s_t0, s_t1;
};

// Reads and checks `path`; `key` names the option or command in errors ("calibrate").
TimelineFile read_timeline_file(const std::string& path, const std::string& key);

}  // namespace minipt
