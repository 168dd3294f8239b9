// One reading of the inputs: the configuration loaded from the disk while recording, then
// from the recorded bundle alone (what the ranks other than 0 do), is the same.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"
#include "core/error.hpp"
#include "core/input_bundle.hpp"
#include "test_files.hpp"
#include "workload/workload.hpp"

namespace minipt {
namespace {

TEST(InputBundle, SerializesAnyBytes) {
  InputBundle b;
  b.error = "rank 0's error";
  b.arguments = {"--config a.toml", "--set run.name=x"};
  b.files = {{"a.toml", std::string("x = 1\n\0\xff", 8)}, {"", ""}};
  b.canonical = {{"a.toml", "/abs/a.toml"}};
  const InputBundle c = InputBundle::deserialize(b.serialize());
  EXPECT_EQ(c.error, b.error);
  EXPECT_EQ(c.arguments, b.arguments);
  EXPECT_EQ(c.files, b.files);
  EXPECT_EQ(c.canonical, b.canonical);
  const std::string wire = b.serialize();
  EXPECT_THROW(InputBundle::deserialize(std::string_view(wire).substr(0, wire.size() - 1)),
               std::runtime_error);
}

TEST(InputBundle, ReplayLoadsTheSameConfigurationWithoutTheFiles) {
  const std::string hist = test::write_scratch("h.csv", "length,count\n100,1\n300,2\n");
  const std::string base = test::write_scratch("base.toml", "[model]\nlayers = 3\n");
  const std::string top = test::write_scratch(
      "top.toml", "base = [\"" + std::filesystem::path(base).filename().string() +
                      "\"]\n[workload]\ndistribution = \"histogram\"\n"
                      "histogram_file = \"" +
                      std::filesystem::path(hist).filename().string() +
                      "\"\nmin = 64\nmax = 512\n");
  InputBundle bundle;
  const Config first = load_config({top}, {"run.steps=3"}, InputReader::recording_into(bundle));
  EXPECT_EQ(bundle.files.size(), 3u);  // top, base, histogram: each read once
  for (const auto& path : {hist, base, top}) std::remove(path.c_str());

  const InputBundle received = InputBundle::deserialize(bundle.serialize());
  const Config again = load_config({top}, {"run.steps=3"}, InputReader::replaying(received));
  EXPECT_EQ(again.resolved_toml, first.resolved_toml);
  EXPECT_EQ(again.model.layers, 3);
  EXPECT_EQ(generate_lengths(again.workload, 1, 3), generate_lengths(first.workload, 1, 3));
  // A file rank 0 did not read is not served from the disk either.
  try {
    load_config({top + ".other"}, {}, InputReader::replaying(received));
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not among the input files rank 0 read"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace minipt
