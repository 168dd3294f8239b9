// Scratch files for unit tests. ctest runs the tests of one binary as parallel
// processes, and run/test.sh runs the cpu and cpu-asan trees side by side, so a fixed
// name under ::testing::TempDir() is shared between tests that run at once: each name
// here carries the running test's suite and name and the process id.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace minipt::test {

// A path in the test temp directory that no other test (or process) uses for `name`.
inline std::string scratch_path(const std::string& name) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string owner = "minipt";
  if (info != nullptr) owner += std::string("_") + info->test_suite_name() + "." + info->name();
  return ::testing::TempDir() + owner + "_" + std::to_string(::getpid()) + "_" + name;
}

// Writes `text` (bytes as given) to scratch_path(name) and returns that path.
inline std::string write_scratch(const std::string& name, const std::string& text) {
  const std::string path = scratch_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace minipt::test
