#include "trace/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

namespace minipt {
namespace {

// Fixed-size table of live temp names so remove_pending_temp_files() stays
// async-signal-safe (unlink only, no allocation). A slot is taken (g_used), filled, and
// only then published (g_ready), so a handler never reads a half-copied name.
constexpr size_t kSlots = 16;
std::array<std::array<char, 4096>, kSlots> g_pending{};
std::array<std::atomic<bool>, kSlots> g_used{};
std::array<std::atomic<bool>, kSlots> g_ready{};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler reads g_ready");

int register_temp(const std::string& temp) {
  if (temp.size() >= g_pending[0].size()) return -1;
  for (size_t i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (g_used[i].compare_exchange_strong(expected, true)) {
      std::memcpy(g_pending[i].data(), temp.c_str(), temp.size() + 1);
      g_ready[i].store(true, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_temp(const std::string& temp) {
  for (size_t i = 0; i < kSlots; ++i)
    if (g_ready[i].load(std::memory_order_acquire) && temp == g_pending[i].data()) {
      g_ready[i].store(false, std::memory_order_release);
      g_pending[i][0] = '\0';
      g_used[i].store(false);
    }
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          (static_cast<uint64_t>(getpid()) << 32)};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s(8, 'x');
  for (char& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
  return s;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw std::runtime_error("cannot write '': empty file name");
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path_.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  if (base.empty()) throw std::runtime_error("cannot write '" + path_ + "': it names a directory");
  // The name is registered before the file exists, so a termination signal arriving
  // right after open() still finds it (unlinking a name not yet created is harmless).
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_ = dir + "." + base + "." + random_suffix() + ".tmp";
    register_temp(temp_);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ >= 0) break;
    const int err = errno;
    unregister_temp(temp_);  // EEXIST: the name is another file's
    if (err != EEXIST) {
      temp_.clear();
      fail("cannot create a temp file", err);
    }
  }
  if (fd_ < 0) {
    temp_.clear();
    fail("cannot create a temp file", EEXIST);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  unregister_temp(temp_);
}

void AtomicFile::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    unregister_temp(temp_);
  }
  temp_.clear();
  throw std::runtime_error("cannot write '" + path_ + "': " + what + ": " + std::strerror(err));
}

void AtomicFile::write(std::string_view bytes) {
  // EFBIG arrives as SIGXFSZ first; ignore it so write() returns the error instead.
  std::signal(SIGXFSZ, SIG_IGN);
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    if (n == 0) fail("write failed", EIO);
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("fsync failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed", errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("rename failed", errno);
  committed_ = true;
  unregister_temp(temp_);
  // Make the rename itself durable.
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

void remove_pending_temp_files() noexcept {
  for (size_t i = 0; i < kSlots; ++i)
    if (g_ready[i].load(std::memory_order_acquire) && g_pending[i][0] != '\0')
      ::unlink(g_pending[i].data());
}

}  // namespace minipt
