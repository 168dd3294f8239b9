// One reading of the inputs (issue 12): the files a run's configuration names (the
// --config files, their `base` includes, a histogram file, a cost file) are read once, on
// rank 0, into an InputBundle that is broadcast; every rank then loads the configuration
// from those bytes through the same code, so no other rank opens a file and every rank
// sees the same input, whatever its working directory or its node's file system holds.
//
// InputReader is the one way the configuration loader, the histogram and the cost file
// get a file: from the disk (commands that run on one rank), from the disk while recording
// what it read into a bundle (rank 0 of `run`), or from a bundle (the other ranks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/input_file.hpp"

namespace minipt {

struct InputBundle {
  std::string error;                         // rank 0's input error ("" if it loaded)
  std::vector<std::string> arguments;        // rank 0's input arguments (--config, --set, --out)
  std::map<std::string, std::string> files;  // path as named → the file's bytes
  std::map<std::string, std::string> canonical;  // path as named → its canonical name

  // Length-prefixed fields (8-byte little-endian sizes): bytes of any value come through.
  std::string serialize() const {
    std::string out;
    auto field = [&out](std::string_view s) {
      uint64_t n = s.size();
      for (int b = 0; b < 8; ++b) out += static_cast<char>((n >> (8 * b)) & 0xff);
      out.append(s);
    };
    auto count = [&field](size_t n) { field(std::to_string(n)); };
    field(error);
    count(arguments.size());
    for (const auto& a : arguments) field(a);
    for (const auto* m : {&files, &canonical}) {
      count(m->size());
      for (const auto& [k, v] : *m) field(k), field(v);
    }
    return out;
  }

  // The bundle of serialize()'s bytes; std::runtime_error if they are cut short.
  static InputBundle deserialize(std::string_view in) {
    auto field = [&in]() {
      if (in.size() < 8) throw std::runtime_error("input bundle: truncated");
      uint64_t n = 0;
      for (int b = 0; b < 8; ++b) n |= uint64_t{static_cast<unsigned char>(in[b])} << (8 * b);
      in.remove_prefix(8);
      if (in.size() < n) throw std::runtime_error("input bundle: truncated");
      std::string s(in.substr(0, n));
      in.remove_prefix(n);
      return s;
    };
    auto count = [&field]() { return std::stoull(field()); };
    InputBundle b;
    b.error = field();
    for (auto n = count(); n > 0; --n) b.arguments.push_back(field());
    for (auto* m : {&b.files, &b.canonical})
      for (auto n = count(); n > 0; --n) {
        std::string k = field();
        (*m)[k] = field();
      }
    return b;
  }
};

class InputReader {
 public:
  InputReader() = default;  // from the disk, recording nothing
  static InputReader recording_into(InputBundle& bundle) {
    InputReader r;
    r.record_ = &bundle;
    return r;
  }
  static InputReader replaying(const InputBundle& bundle) {
    InputReader r;
    r.replay_ = &bundle;
    return r;
  }

  // The bytes of `path` (read_input_file's limits and errors: ConfigError(key, ...)). A
  // path recorded once is served from the bundle again, so it is read once.
  std::string read(const std::string& path, const std::string& key, const std::string& what) const {
    if (const InputBundle* b = bundle(); b != nullptr)
      if (const auto it = b->files.find(path); it != b->files.end()) return it->second;
    if (replay_ != nullptr) throw not_read(path, key);
    std::string bytes = read_input_file(path, key, what);
    if (record_ != nullptr) record_->files[path] = bytes;
    return bytes;
  }

  // std::filesystem::weakly_canonical(path) as rank 0 saw it (configuration includes are
  // told apart by it).
  std::string canonical(const std::string& path) const {
    if (const InputBundle* b = bundle(); b != nullptr)
      if (const auto it = b->canonical.find(path); it != b->canonical.end()) return it->second;
    if (replay_ != nullptr) throw not_read(path, "");
    std::string name = std::filesystem::weakly_canonical(path).string();
    if (record_ != nullptr) record_->canonical[path] = name;
    return name;
  }

 private:
  const InputBundle* bundle() const { return record_ != nullptr ? record_ : replay_; }
  // Only if ranks given the same arguments asked for different files (a bug).
  static ConfigError not_read(const std::string& path, const std::string& key) {
    return ConfigError(key, path + ": not among the input files rank 0 read");
  }

  InputBundle* record_ = nullptr;        // rank 0: reads the disk and records here
  const InputBundle* replay_ = nullptr;  // the other ranks: serves rank 0's bytes
};

}  // namespace minipt
