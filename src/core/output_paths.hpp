// The one rule for where a command writes (issue 31), shared by run, simulate and
// calibrate: no output may be a directory, the same file as another output, or the same
// file as any input. Two paths name the same file if both exist and
// std::filesystem::equivalent() says so (hard links, symbolic links, bind mounts), else if
// their absolute, weakly canonical, lexically normal forms are equal ("o.h5", "./o.h5" and
// "d/../o.h5" collide).
#pragma once

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.hpp"

namespace minipt {

// A path and the key, option or role that named it ("run.out", "--config", ...).
struct NamedPath {
  std::string key;
  std::string path;
};

// The resolved absolute form of `path` (see above); the path as given if it cannot be
// resolved.
inline std::filesystem::path resolved_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return std::filesystem::path(path).lexically_normal();
  const std::filesystem::path canon = std::filesystem::weakly_canonical(abs, ec);
  return (ec ? abs : canon).lexically_normal();
}

inline bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec)) {
    const bool same = std::filesystem::equivalent(a, b, ec);
    if (!ec) return same;
  }
  return resolved_path(a) == resolved_path(b);
}

// Throws ConfigError(output key, ...) for the first output that is a directory, the same
// file as an earlier output, or the same file as an input, naming both keys and paths.
inline void check_output_paths(const std::vector<NamedPath>& outputs,
                               const std::vector<NamedPath>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& o = outputs[i];
    std::error_code ec;
    if (std::filesystem::is_directory(o.path, ec))
      throw ConfigError(o.key, "cannot write '" + o.path + "': it is a directory");
    for (size_t j = 0; j < i; ++j)
      if (same_file(o.path, outputs[j].path))
        throw ConfigError(o.key, "'" + o.path + "' is the same file as " + outputs[j].key + " '" +
                                     outputs[j].path +
                                     "': one output would replace the other (name another file)");
    for (const NamedPath& in : inputs)
      if (same_file(o.path, in.path))
        throw ConfigError(o.key, "'" + o.path + "' is the same file as the input " + in.key + " '" +
                                     in.path +
                                     "': writing it would replace the input (name another file)");
  }
}

}  // namespace minipt
