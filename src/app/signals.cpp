#include "app/signals.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <utility>

#include "trace/atomic_file.hpp"

namespace minipt {
namespace {

struct SignalMessage {
  int signal = 0;
  std::array<char, 160> text{};
  size_t size = 0;
};

// Written once, before the handlers are installed; only read by the handler.
std::array<SignalMessage, 2> g_messages{};
volatile std::sig_atomic_t g_silent = 0;

void on_termination_signal(int sig) {
  for (const SignalMessage& m : g_messages)
    if (m.signal == sig && m.size > 0 && g_silent == 0) {
      // Nothing useful can be done if stderr is gone.
      [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, m.text.data(), m.size);
    }
  remove_pending_temp_files();
  // SA_RESETHAND has restored the default action and SA_NODEFER left `sig` unblocked,
  // so this ends the process with the signal's status.
  ::raise(sig);
  ::_exit(128 + sig);
}

}  // namespace

void install_termination_handlers(int rank) {
  const std::array<std::pair<int, const char*>, 2> signals{
      {{SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"}}};
  for (size_t i = 0; i < signals.size(); ++i) {
    SignalMessage& m = g_messages[i];
    m.signal = signals[i].first;
    const int n = std::snprintf(m.text.data(), m.text.size(),
                                "minipt: rank %d: stopped by %s (signal %d); unfinished output "
                                "files removed\n",
                                rank, signals[i].second, signals[i].first);
    m.size = n < 0 ? 0 : std::min(static_cast<size_t>(n), m.text.size() - 1);
  }
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_termination_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (const auto& [sig, name] : signals) sigaction(sig, &action, nullptr);
}

void silence_termination_message() noexcept { g_silent = 1; }

}  // namespace minipt
