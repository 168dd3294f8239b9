// Tests of the JSON output: the provenance object (trace/provenance.hpp) and the run
// summary's text (app/results.hpp): non-finite numbers become null, bytes that are
// not UTF-8 become U+FFFD, and every key the Python side reads is there.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "app/results.hpp"
#include "trace/provenance.hpp"

namespace minipt {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

TEST(Provenance, HasEveryKeyOnRankZero) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ASSERT_EQ(world, 1) << "minipt_unit runs as one process";
  const json p = provenance(MPI_COMM_WORLD, "test-device", {"minipt", "run", "--quiet"});
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p.at("minipt_version"), MINIPT_VERSION);
  // minipt's own tree's `git describe --always --dirty` at build time (hex digits, maybe
  // "-dirty"), or "unknown (why)"; tests/python/test_summary_schema.py compares it with git.
  const std::string rev = p.at("git_revision").get<std::string>();
  ASSERT_FALSE(rev.empty());
  if (rev.rfind("unknown (", 0) != 0) {
    const std::string hex = rev.substr(0, rev.find('-'));
    EXPECT_GE(hex.size(), 7u) << rev;
    for (char c : hex) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)) != 0) << rev;
  }
  EXPECT_EQ(p.at("world_size"), 1);
  // YYYY-MM-DDTHH:MM:SSZ (checked by hand: <regex> trips GCC 12's -Wmaybe-uninitialized
  // under the sanitizers).
  const std::string utc = p.at("created_utc").get<std::string>();
  const std::string shape = "dddd-dd-ddTdd:dd:ddZ";
  ASSERT_EQ(utc.size(), shape.size()) << utc;
  for (size_t i = 0; i < shape.size(); ++i)
    EXPECT_TRUE(shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(utc[i])) != 0
                                : utc[i] == shape[i])
        << utc;
  const std::string mpi = p.at("mpi_library").get<std::string>();
  EXPECT_FALSE(mpi.empty());
  EXPECT_NE(mpi.back(), '\n');
  ASSERT_TRUE(p.at("hosts").is_array());
  ASSERT_EQ(p.at("hosts").size(), 1u);
  EXPECT_FALSE(p.at("hosts").at(0).get<std::string>().empty());
  EXPECT_EQ(p.at("devices"), json::array({"test-device"}));
  EXPECT_EQ(p.at("command_line"), json::array({"minipt", "run", "--quiet"}));
  // The rank map, library versions, build settings and environment.
  ASSERT_EQ(p.at("ranks").size(), 1u);
  EXPECT_EQ(p.at("ranks").at(0).at("rank"), 0);
  EXPECT_EQ(p.at("ranks").at(0).at("local_rank"), 0);
  EXPECT_EQ(p.at("ranks").at(0).at("device"), "test-device");
  EXPECT_EQ(p.at("ranks").at(0).at("host"), p.at("hosts").at(0));
  EXPECT_EQ(p.at("software").at("mpi_library"), p.at("mpi_library"));
  for (const char* key : {"hdf5", "kokkos", "cuda_runtime", "cuda_driver", "nccl", "cudnn",
                          "compiler", "mpi_standard"})
    EXPECT_FALSE(p.at("software").at(key).get<std::string>().empty()) << key;
#ifndef MINIPT_HAVE_CUDA
  EXPECT_EQ(p.at("software").at("nccl"), "not built");
#endif
  EXPECT_FALSE(p.at("build").at("type").get<std::string>().empty());
  EXPECT_TRUE(p.at("environment").is_object());
}

TEST(Provenance, NoCommandLineKeyWithoutOne) {
  const json p = provenance(MPI_COMM_WORLD, "cpu");
  EXPECT_FALSE(p.contains("command_line"));
  EXPECT_TRUE(p.contains("minipt_version"));
}

TEST(JsonText, NonFiniteIsNull) {
  EXPECT_TRUE(finite_or_null(kNaN).is_null());
  EXPECT_TRUE(finite_or_null(kInf).is_null());
  EXPECT_TRUE(finite_or_null(-kInf).is_null());
  EXPECT_EQ(finite_or_null(1.5), 1.5);
  EXPECT_EQ(finite_or_null(0.0), 0.0);
  // What nlohmann-json itself does with a non-finite number: null, never `nan`.
  EXPECT_EQ(json_text(json::array({kNaN, kInf, -kInf}), -1), "[null,null,null]");
}

TEST(JsonText, InvalidUtf8IsReplacedValidIsKept) {
  EXPECT_NO_THROW(json_text(json("a\xFFz"), -1));
  EXPECT_EQ(json_text(json("a\xFFz"), -1), "\"a" + kReplacement + "z\"");
  EXPECT_EQ(json_text(json("\xC3"), -1), "\"" + kReplacement + "\"");  // truncated sequence
  EXPECT_EQ(json_text(json("\xC3\xBC"), -1), "\"\xC3\xBC\"");          // ü, as is
  EXPECT_EQ(json_text(json("q\"\\\n\x01"), -1), R"("q\"\\\n\u0001")");
}

RunFile sample_run() {
  RunFile rf;
  rf.string_attrs = {{"name", "run\xFF\xFE-x"}, {"mode", "odc"}, {"config_toml", "[run]\n"}};
  rf.int_attrs = {{"schema_version", 1}, {"world_size", 2}};
  rf.float_attrs = {{"peak_tflops", kNaN}, {"finite", 2.5}};
  RunSummary& s = rf.summary;
  s.steps_measured = 3;
  s.tokens = 1234;
  s.tokens_per_s = kInf;
  s.tokens_per_s_per_rank = 617.25;
  s.step_ms = 12.5;
  s.utilization = 0.75;
  s.idle_fraction = 0.25;
  s.mfu = kNaN;
  s.peak_memory_bytes = int64_t{1} << 40;
  s.utilization_per_rank = {0.5, kNaN};
  s.step_seconds = {0.1, -kInf, 0.2};
  return rf;
}

TEST(SummaryJson, NonFiniteNumbersAreNull) {
  const std::string text = summary_json_text(sample_run(), "out/r.h5", json::object());
  // No bare nan / inf / NaN / Infinity as a value (JSON has none; Python would read them).
  // After a ':', '[' or ',' (and blanks, a sign) no value may start with nan or inf.
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ':' && text[i] != '[' && text[i] != ',') continue;
    size_t j = i + 1;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\n' || text[j] == '-')) ++j;
    std::string word;
    while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j])))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(text[j++])));
    EXPECT_TRUE(word.rfind("nan", 0) != 0 && word.rfind("inf", 0) != 0) << text;
  }
  EXPECT_EQ(text.back(), '\n');
  const json j = json::parse(text);
  EXPECT_TRUE(j.at("peak_tflops").is_null());
  EXPECT_EQ(j.at("finite"), 2.5);
  const json& s = j.at("summary");
  EXPECT_TRUE(s.at("tokens_per_s").is_null());
  EXPECT_TRUE(s.at("mfu").is_null());
  EXPECT_EQ(s.at("tokens_per_s_per_rank"), 617.25);
  EXPECT_EQ(s.at("utilization_per_rank"), json::parse("[0.5, null]"));
  EXPECT_EQ(s.at("step_seconds"), json::parse("[0.1, null, 0.2]"));
  EXPECT_EQ(s.at("peak_memory_bytes"), int64_t{1} << 40);
}

TEST(SummaryJson, InvalidUtf8BecomesReplacementCharacter) {
  const std::string h5 = "out/bad\xC3(.h5";
  std::string text;
  ASSERT_NO_THROW(text = summary_json_text(sample_run(), h5, json::object()));
  EXPECT_EQ(text.find('\xFF'), std::string::npos);
  EXPECT_EQ(text.find('\xFE'), std::string::npos);
  const json j = json::parse(text);  // throws on invalid UTF-8
  EXPECT_EQ(j.at("name"), "run" + kReplacement + kReplacement + "-x");
  EXPECT_EQ(j.at("h5"), "out/bad" + kReplacement + "(.h5");
}

TEST(SummaryJson, KeepsEveryKeyAndEmbedsProvenance) {
  const json prov = provenance(MPI_COMM_WORLD, "cpu", {"minipt", "run"});
  const json j = json::parse(summary_json_text(sample_run(), "r.h5", prov));
  for (const char* key :
       {"name", "mode", "config_toml", "schema_version", "world_size", "peak_tflops", "finite"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.at("world_size"), 2);
  EXPECT_EQ(j.at("h5"), "r.h5");
  for (const char* key :
       {"tokens_per_s", "tokens_per_s_per_rank", "step_ms", "utilization", "idle_fraction", "mfu",
        "steps_measured", "tokens", "peak_memory_bytes", "utilization_per_rank", "step_seconds"})
    EXPECT_TRUE(j.at("summary").contains(key)) << key;
  EXPECT_EQ(j.at("provenance"), prov);
  EXPECT_EQ(j.at("provenance").at("minipt_version"), MINIPT_VERSION);
}

}  // namespace
}  // namespace minipt
