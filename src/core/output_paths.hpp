// The one rule for where a command writes (issue 31), shared by run, simulate and
// calibrate: no output may be a directory, the same file as another output, or the same
// file as any input. An output is written by renaming a temp onto its directory entry, so
// it is identified by that entry: its directory resolved (absolute, symbolic links
// followed, lexically normal) and its own name (a link there is replaced, not followed).
// Two outputs collide if their entries are equal ("o.h5", "./o.h5" and "d/../o.h5" do).
// An output collides with an input if its entry is the input's entry or the file the input
// resolves to (links followed), or, where both exist, std::filesystem::equivalent() says
// they are one file (hard links, bind mounts).
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

// The directory entry `path` names: its directory resolved, its own name as given.
inline std::filesystem::path entry_path(const std::string& path) {
  const std::filesystem::path p(path);
  const std::filesystem::path name = p.filename();
  if (name.empty() || name == "." || name == "..") return resolved_path(path);
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(p, ec).parent_path();
  if (ec) return p.lexically_normal();
  const std::filesystem::path canon = std::filesystem::weakly_canonical(dir, ec);
  return ((ec ? dir : canon) / name).lexically_normal();
}

// Whether writing output `out` would replace input `in` (or `in` is `out`).
inline bool same_file(const std::string& out, const std::string& in) {
  const std::filesystem::path e = entry_path(out);
  if (e == entry_path(in) || e == resolved_path(in)) return true;
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && std::filesystem::exists(in, ec)) {
    const bool same = std::filesystem::equivalent(out, in, ec);
    if (!ec) return same;
  }
  return false;
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
      if (entry_path(o.path) == entry_path(outputs[j].path))
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
