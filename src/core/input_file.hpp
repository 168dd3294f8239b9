// Reading one input file whole (a configuration file, a file it includes, a histogram,
// a cost file): it must be a regular file (a FIFO, device, socket or directory is a
// ConfigError naming it, checked on the opened descriptor, which is opened non-blocking so
// that a FIFO with no writer cannot hang the open) and at most kMaxInputFileBytes; a path
// that is missing or unreadable is a ConfigError naming it and the OS's reason.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace minipt {

inline constexpr size_t kMaxInputFileBytes = size_t{16} << 20;

// The file's bytes. Errors: ConfigError(key, "<path>: cannot read <what> (<reason>)"),
// ConfigError(key, "<path>: <what> is not a regular file (a FIFO, device, socket or
// directory)") and ConfigError(key, "<path>: <what> is larger than 16 MiB (not read
// further)").
inline std::string read_input_file(const std::string& path, const std::string& key,
                                   const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    throw ConfigError(key, path + ": cannot read " + what + " (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    if (S_ISDIR(st.st_mode))
      throw ConfigError(key, path + ": cannot read " + what + " (" + std::strerror(EISDIR) + ")");
    throw ConfigError(
        key, path + ": " + what + " is not a regular file (a FIFO, device, socket or directory)");
  }
  std::string text;
  char buffer[1 << 16];
  bool too_big = false;
  int read_errno = 0;
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      read_errno = errno;
      break;
    }
    if (got == 0) break;
    if (text.size() + static_cast<size_t>(got) > kMaxInputFileBytes) {
      too_big = true;
      break;
    }
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  if (too_big)
    throw ConfigError(key, path + ": " + what + " is larger than " +
                               std::to_string(kMaxInputFileBytes >> 20) +
                               " MiB (not read further)");
  if (read_errno != 0)
    throw ConfigError(key, path + ": cannot read " + what + " (" + std::strerror(read_errno) + ")");
  return text;
}

}  // namespace minipt
