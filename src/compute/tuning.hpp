// Kernel choices made once per job (compute.tuning). A backend that picks among kernel
// variants by timing them (cuda: cuBLASLt algorithms per token bucket, cuDNN plans per
// attention graph) would otherwise choose per process and per run: two ranks, or two runs,
// could then run different kernels and sum in different orders. Instead one rank times the
// candidates on the job's own microbatch shapes before step 0 and every rank uses its
// choices (train/kernel_tuning.cpp); a tuning file carries them from one run to the next.
//
// The choices are opaque to everything but the backend that made them: a key names a
// kernel and its shape, a value the variant chosen. `identity` says what they hold for
// (device name and library versions); a file made elsewhere is refused.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace minipt {

struct KernelChoices {
  static constexpr int kFormatVersion = 1;
  std::string identity;                        // "" = no backend of this run tunes
  std::map<std::string, std::string> entries;  // kernel and shape -> chosen variant

  // The tuning file's text (JSON, one entry a line, sorted, so equal choices are equal
  // bytes) and its FNV-1a 64 hash as 16 hex digits: what provenance records.
  std::string to_json() const;
  std::string hash() const;
  // The choices of a tuning file's text; ConfigError(key, ...) naming `source` when the
  // text is not a complete tuning file of this format.
  static KernelChoices from_json(std::string_view text, const std::string& source,
                                 const std::string& key);
};

// compute.tuning resolved: "auto" (tune before step 0, through the cache), "off" (each
// library's heuristic choice, nothing timed) or the path of a tuning file.
struct TuningSetting {
  enum class Kind { automatic, off, file } kind = Kind::automatic;
  std::string path;  // file: as configured
  static TuningSetting parse(const std::string& value);
  std::string text() const;  // as the configuration writes it
};

// The cache file `auto` reads and extends for backends of this identity:
// $MINIPT_TUNING_CACHE, else $XDG_CACHE_HOME/minipt, else $HOME/.cache/minipt, then
// tuning-<hash of identity>.json.
std::string tuning_cache_path(const std::string& identity);

}  // namespace minipt
