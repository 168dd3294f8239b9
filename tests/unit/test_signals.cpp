// Tests of the termination path (app/signals.hpp, trace/atomic_file.hpp): the temp files
// of unfinished AtomicFiles are what remove_pending_temp_files() unlinks, and a SIGTERM or
// SIGINT ends the process by that signal after naming the rank and the signal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "app/signals.hpp"
#include "test_files.hpp"
#include "trace/atomic_file.hpp"

namespace minipt {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> temps_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tmp") out.push_back(e.path().filename().string());
  return out;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = test::scratch_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(TerminationCleanup, PendingTempFilesAreRemovedCommittedOnesKept) {
  const fs::path dir = fresh_dir("pending");
  {
    AtomicFile done((dir / "done.h5").string());
    done.write("kept");
    done.commit();
    AtomicFile a((dir / "a.h5").string());
    AtomicFile b((dir / "b.json").string());
    a.write("partial");
    ASSERT_EQ(temps_in(dir).size(), 2u);
    EXPECT_EQ(temps_in(dir)[0].rfind(".", 0), 0u) << "temp names start with a dot";
    remove_pending_temp_files();
    EXPECT_TRUE(temps_in(dir).empty());
    EXPECT_FALSE(fs::exists(a.temp_path()));
  }  // the destructors find their temps gone: nothing to do, no error
  EXPECT_TRUE(fs::exists(dir / "done.h5"));
  EXPECT_FALSE(fs::exists(dir / "a.h5"));
  EXPECT_FALSE(fs::exists(dir / "b.json"));
  // Slots are freed: later files register (and are removed) again.
  AtomicFile c((dir / "c.h5").string());
  remove_pending_temp_files();
  EXPECT_TRUE(temps_in(dir).empty());
}

void die_by(int sig, const fs::path& dir) {
  install_termination_handlers(3);
  AtomicFile pending((dir / "x.h5").string());
  pending.write("unfinished");
  ::raise(sig);
  ::_exit(0);  // not reached: the handler ends the process by `sig`
}

TEST(TerminationHandlerDeathTest, SigtermRemovesTempsAndDiesBySigterm) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path dir = fresh_dir("sigterm");
  EXPECT_EXIT(die_by(SIGTERM, dir), ::testing::KilledBySignal(SIGTERM),
              "minipt: rank 3: stopped by SIGTERM \\(signal 15\\); unfinished output files "
              "removed");
  EXPECT_TRUE(temps_in(dir).empty());
  EXPECT_FALSE(fs::exists(dir / "x.h5"));
}

TEST(TerminationHandlerDeathTest, SigintDiesBySigint) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path dir = fresh_dir("sigint");
  EXPECT_EXIT(die_by(SIGINT, dir), ::testing::KilledBySignal(SIGINT),
              "minipt: rank 3: stopped by SIGINT \\(signal 2\\)");
  EXPECT_TRUE(temps_in(dir).empty());
}

}  // namespace
}  // namespace minipt
