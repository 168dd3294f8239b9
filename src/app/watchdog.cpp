#include "app/watchdog.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <utility>

namespace minipt {

Watchdog::Watchdog(double seconds, std::function<void(int step)> on_timeout) {
  if (!(seconds > 0)) return;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  thread_ = std::thread([this, deadline, on_timeout = std::move(on_timeout)] {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_until(lock, deadline, [this] { return stopping_; })) return;
    lock.unlock();
    on_timeout(step_.load(std::memory_order_relaxed));
  });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::string timeout_message(int rank, double timeout_s, int step, int steps) {
  std::ostringstream s;
  s << "minipt: rank " << rank << ": error: run.timeout_s = " << timeout_s << " exceeded (";
  if (step < 0)
    s << "before step 0";
  else if (step >= steps)
    s << "after the last step";
  else
    s << "step " << step;
  s << ")";
  return s.str();
}

namespace {

constexpr uint32_t kMagic = 0x6d707764;  // "mpwd"
enum : int32_t { kQuery = 1, kAnswer = 2 };

// One datagram: what the sender is asking or telling, its rank and the step it has begun.
struct Datagram {
  uint32_t magic, kind, rank, step;  // network byte order on the wire
};

void send_to(int fd, const WatchdogAddress& a, int32_t kind, int rank, int step) {
  const Datagram d{htonl(kMagic), htonl(static_cast<uint32_t>(kind)),
                   htonl(static_cast<uint32_t>(rank)), htonl(static_cast<uint32_t>(step))};
  for (uint16_t i = 0; i < a.count && i < 4; ++i) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = a.port;
    to.sin_addr.s_addr = a.ipv4[i];
    ::sendto(fd, &d, sizeof d, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

WatchdogEndpoint open_watchdog_endpoint() {
  WatchdogEndpoint e;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return e;
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  any.sin_port = 0;
  socklen_t len = sizeof any;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&any), &len) != 0) {
    ::close(fd);
    return e;
  }
  e.fd = fd;
  e.address.port = any.sin_port;
  // Non-loopback IPv4 addresses first (other nodes), the loopback last (this node).
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr && e.address.count < 3; i = i->ifa_next) {
      if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
      const uint32_t a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
      if ((ntohl(a) >> 24) == 127) continue;
      e.address.ipv4[e.address.count++] = a;
    }
    ::freeifaddrs(list);
  }
  e.address.ipv4[e.address.count++] = htonl(INADDR_LOOPBACK);
  return e;
}

ProgressWatchdog::ProgressWatchdog(int rank, WatchdogEndpoint self,
                                   std::vector<WatchdogAddress> peers, WatchdogOptions options,
                                   std::function<void(const std::string&)> on_stall)
    : rank_(rank),
      self_(self),
      peers_(std::move(peers)),
      options_(options),
      on_stall_(std::move(on_stall)) {
  if (!(options_.factor > 0)) return;
  thread_ = std::thread([this] { loop(); });
}

ProgressWatchdog::~ProgressWatchdog() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (self_.fd >= 0) ::close(self_.fd);
}

void ProgressWatchdog::progress(int step, int steps) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (step_ >= 0) slowest_s_ = std::max(slowest_s_, seconds(now - last_));
  step_ = step;
  steps_ = steps;
  last_ = now;
}

void ProgressWatchdog::loop() {
  bool querying = false;
  int query_step = -1;
  bool resent = false;
  std::chrono::steady_clock::time_point query_at;
  std::map<int, int> answers;  // rank -> the step it has begun
  const int world = static_cast<int>(peers_.size());
  while (!stopping_) {
    if (self_.fd >= 0) {
      pollfd p{self_.fd, POLLIN, 0};
      ::poll(&p, 1, 50);
      Datagram d{};
      sockaddr_in from{};
      socklen_t len = sizeof from;
      while (::recvfrom(self_.fd, &d, sizeof d, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                        &len) == static_cast<ssize_t>(sizeof d)) {
        len = sizeof from;
        if (ntohl(d.magic) != kMagic) continue;
        const auto kind = static_cast<int32_t>(ntohl(d.kind));
        const auto who = static_cast<int>(static_cast<int32_t>(ntohl(d.rank)));
        const auto step = static_cast<int>(static_cast<int32_t>(ntohl(d.step)));
        if (kind == kQuery) {
          int mine;
          {
            const std::lock_guard<std::mutex> lock(mutex_);
            mine = step_;
          }
          const Datagram a{htonl(kMagic), htonl(static_cast<uint32_t>(kAnswer)),
                           htonl(static_cast<uint32_t>(rank_)), htonl(static_cast<uint32_t>(mine))};
          ::sendto(self_.fd, &a, sizeof a, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&from),
                   sizeof from);
        } else if (kind == kAnswer && querying && who >= 0 && who < world) {
          answers[who] = step;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    int step, steps;
    double slowest;
    std::chrono::steady_clock::time_point last;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      step = step_;
      steps = steps_;
      slowest = slowest_s_;
      last = last_;
    }
    if (step < 0) continue;  // not monitoring before the first step
    const auto now = std::chrono::steady_clock::now();
    const double threshold = std::max(options_.floor_s, options_.factor * slowest);
    const double waited = seconds(now - last);
    if (querying && step != query_step) querying = false;  // progress resumed
    if (!querying && waited > threshold) {
      querying = true;
      query_step = step;
      query_at = now;
      resent = false;
      answers.clear();
      if (self_.fd >= 0)
        for (int r = 0; r < world; ++r)
          if (r != rank_) send_to(self_.fd, peers_[static_cast<size_t>(r)], kQuery, rank_, step);
    }
    if (!querying) continue;
    const double since = seconds(now - query_at);
    if (!resent && since >= options_.grace_s / 2 && self_.fd >= 0) {
      resent = true;  // a datagram may be lost: ask those that have not answered once more
      for (int r = 0; r < world; ++r)
        if (r != rank_ && !answers.count(r))
          send_to(self_.fd, peers_[static_cast<size_t>(r)], kQuery, rank_, step);
    }
    bool lower_alive = false;
    for (const auto& [r, s] : answers)
      if (r < rank_) lower_alive = true;
    if ((since >= options_.grace_s && !lower_alive) || since >= 3 * options_.grace_s) {
      std::vector<int> missing;
      for (int r = 0; r < world; ++r) {
        if (r == rank_) continue;
        const auto it = answers.find(r);
        if (it == answers.end() || it->second < query_step) missing.push_back(r);
      }
      on_stall_(
          stall_message(rank_, query_step, steps, waited, threshold, options_, slowest, missing));
      return;  // on_stall ends the process; in tests it returns
    }
  }
}

std::unique_ptr<ProgressWatchdog> start_progress_watchdog(
    MPI_Comm comm, WatchdogOptions options, std::function<void(const std::string&)> on_stall) {
  if (!(options.factor > 0)) return nullptr;  // every rank has the same options
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  const WatchdogEndpoint self = open_watchdog_endpoint();
  std::vector<WatchdogAddress> peers(static_cast<size_t>(world));
  MPI_Allgather(&self.address, sizeof(WatchdogAddress), MPI_BYTE, peers.data(),
                sizeof(WatchdogAddress), MPI_BYTE, comm);
  return std::make_unique<ProgressWatchdog>(rank, self, std::move(peers), options,
                                            std::move(on_stall));
}

std::string stall_message(int rank, int step, int steps, double waited_s, double threshold_s,
                          const WatchdogOptions& o, double slowest_s,
                          const std::vector<int>& missing) {
  std::ostringstream s;
  s.precision(3);
  const std::string where =
      step >= steps ? "the end of the run (after the last step)" : "step " + std::to_string(step);
  s << "minipt: rank " << rank << ": error: " << where << " stalled: no progress for " << waited_s
    << " s (threshold " << threshold_s << " s = max(run.watchdog_floor_s " << o.floor_s
    << ", run.watchdog_factor " << o.factor << " x the slowest step " << slowest_s << " s)); ";
  if (missing.empty()) {
    s << "every rank reached " << where << " (a hang inside it)";
  } else {
    s << (missing.size() == 1 ? "rank " : "ranks ");
    for (size_t i = 0; i < missing.size(); ++i) s << (i ? ", " : "") << missing[i];
    s << (missing.size() == 1 ? " did" : " did") << " not reach " << where
      << " (stopped, hung or dead?)";
  }
  return s.str();
}

}  // namespace minipt
