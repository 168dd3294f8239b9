// AtomicFile: the one way minipt writes an output file. The bytes go to a fresh temp
// file in the target's directory (created exclusively, never through a symlink), are
// fsync'ed, and only then renamed over the final name. Any failure throws
// std::runtime_error naming the final file and the OS error; the temp is removed and
// whatever sat under the final name is left untouched.
#pragma once

#include <string>
#include <string_view>

namespace minipt {

class AtomicFile {
 public:
  // Creates the temp `DIR/.NAME.XXXXXX.tmp` (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644 & umask).
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temp unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);  // all of it, or throws (ENOSPC, EFBIG, EIO ...)
  void commit();                       // fsync, close, rename onto the final name
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically (see AtomicFile).
void write_file_atomically(const std::string& path, std::string_view bytes);

// Temp files still being written by this process; a signal handler removes them.
void remove_pending_temp_files() noexcept;

}  // namespace minipt
