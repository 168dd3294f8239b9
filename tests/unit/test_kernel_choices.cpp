// The tuning file (compute/tuning.hpp), its errors, the cache path, the table of device
// peaks and the microbatches the auto pre-pass runs (train/kernel_tuning.hpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "compute/device_peaks.hpp"
#include "compute/tuning.hpp"
#include "core/error.hpp"
#include "train/kernel_tuning.hpp"

namespace minipt {
namespace {

KernelChoices sample() {
  return {"NVIDIA H100 80GB HBM3 (cudnn attention); sm_90; cudart 13000; cublasLt 130000",
          {{"gemm bucket op0 m4096 n1536 k1536 ld1536,1536,1536 bf16", std::string(128, 'a')},
           {"cudnn fwd heads12,2 d128 batch4 seq8192 total16384 ld2048,1536", "1"}}};
}

std::string error_of(const std::string& text) {
  try {
    KernelChoices::from_json(text, "t.json", "compute.tuning");
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "compute.tuning");
    return e.what();
  }
  return "";
}

TEST(KernelChoices, RoundTripsAndHashesItsBytes) {
  const KernelChoices c = sample();
  const KernelChoices back = KernelChoices::from_json(c.to_json(), "t.json", "compute.tuning");
  EXPECT_EQ(back.identity, c.identity);
  EXPECT_EQ(back.entries, c.entries);
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.hash(), c.hash());
  EXPECT_EQ(c.hash().size(), 16u);
  KernelChoices other = c;
  other.entries.begin()->second = std::string(128, 'b');
  EXPECT_NE(other.hash(), c.hash());
  KernelChoices empty;
  EXPECT_EQ(KernelChoices::from_json(empty.to_json(), "e", "k").entries.size(), 0u);
}

TEST(KernelChoices, ATruncatedDamagedOrForeignFileIsAnErrorNamingFileAndKey) {
  const std::string text = sample().to_json();
  for (size_t cut : {size_t{0}, size_t{1}, text.size() / 2, text.size() - 3}) {
    const std::string e = error_of(text.substr(0, cut));
    EXPECT_NE(e.find("compute.tuning: t.json: not a minipt tuning file"), std::string::npos)
        << cut << ": " << e;
  }
  // Complete JSON with a choice left out: the header's count says it is short.
  std::string shorter = text;
  const size_t line = shorter.find("\n    \"gemm");
  shorter.erase(line, shorter.find('\n', line + 1) - line);
  EXPECT_NE(error_of(shorter).find("truncated"), std::string::npos) << shorter;
  EXPECT_NE(error_of(R"({"header": {"format": "other"}, "choices": {}})").find("format"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a": 1})").find("no header"), std::string::npos);
  std::string wrong_version = text;
  wrong_version.replace(wrong_version.find("\"version\":1"), 11, "\"version\":9");
  EXPECT_NE(error_of(wrong_version).find("version"), std::string::npos);
}

TEST(TuningSetting, ParsesAutoOffAndAPath) {
  EXPECT_EQ(TuningSetting::parse("auto").kind, TuningSetting::Kind::automatic);
  EXPECT_EQ(TuningSetting::parse("off").kind, TuningSetting::Kind::off);
  const TuningSetting f = TuningSetting::parse("run.tuning.json");
  EXPECT_EQ(f.kind, TuningSetting::Kind::file);
  EXPECT_EQ(f.text(), "run.tuning.json");
  EXPECT_THROW(TuningSetting::parse(""), ConfigError);
}

TEST(TuningCache, IsNamedByTheIdentityUnderTheConfiguredDirectory) {
  setenv("MINIPT_TUNING_CACHE", "/tmp/minipt-cache-test", 1);
  const std::string a = tuning_cache_path("device A"), b = tuning_cache_path("device B");
  unsetenv("MINIPT_TUNING_CACHE");
  EXPECT_EQ(a.rfind("/tmp/minipt-cache-test/tuning-", 0), 0u) << a;
  EXPECT_NE(a, b);
}

TEST(DevicePeaks, KnownDevicesAndNothingForOthers) {
  EXPECT_DOUBLE_EQ(known_device_peak_tflops("NVIDIA H100 80GB HBM3"), 989.4);
  EXPECT_DOUBLE_EQ(known_device_peak_tflops("NVIDIA H100 PCIe"), 756.0);
  EXPECT_DOUBLE_EQ(known_device_peak_tflops("NVIDIA H200"), 989.4);
  EXPECT_DOUBLE_EQ(known_device_peak_tflops("NVIDIA A100-SXM4-80GB"), 312.0);
  EXPECT_DOUBLE_EQ(known_device_peak_tflops("cpu"), 0.0);
  EXPECT_DOUBLE_EQ(known_device_peak_tflops(""), 0.0);
}

TEST(TuningMicrobatches, TheLargestOfEachTokenBucketOverRanksAndSteps) {
  auto mb = [](int64_t tokens) {
    Microbatch m;
    m.sequences = {0};
    m.tokens = tokens;
    return m;
  };
  std::vector<StepPlan> plans(2);
  plans[0].ranks.resize(2);
  plans[1].ranks.resize(2);
  plans[0].ranks[0].microbatches = {mb(100), mb(60)};        // buckets 128, 64
  plans[0].ranks[1].microbatches = {mb(120), Microbatch{}};  // 128; an empty one
  plans[1].ranks[0].microbatches = {mb(90)};                 // 128
  plans[1].ranks[1].microbatches = {mb(33), mb(64)};         // 64, 64 (the larger)
  const std::vector<MicrobatchRef> refs = tuning_microbatches(plans);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].tokens, 64);
  EXPECT_EQ(refs[0].step, 1);
  EXPECT_EQ(refs[0].rank, 1);
  EXPECT_EQ(refs[0].microbatch, 1);
  EXPECT_EQ(refs[1].tokens, 120);
  EXPECT_EQ(refs[1].step, 0);
  EXPECT_EQ(refs[1].rank, 1);
  EXPECT_EQ(refs[1].microbatch, 0);
}

}  // namespace
}  // namespace minipt
