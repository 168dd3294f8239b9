// The local checks of the in-run verification (Trainer::verify): finite losses and
// parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "train/trainer.hpp"

namespace minipt {
namespace {

TEST(Verification, FiniteLossesAndParametersPass) {
  const std::vector<float> shard = {0.1f, -2.0f, 0.0f};
  EXPECT_EQ(verification_problem({1.0, 0.5}, shard.data(), 3), "");
}

TEST(Verification, NamesTheFirstNonFiniteLossOrElement) {
  const std::vector<float> shard = {0.1f, std::numeric_limits<float>::infinity(), 0.0f};
  EXPECT_EQ(verification_problem({1.0, std::nan("")}, shard.data(), 0),
            "the loss of step 1 is not finite");
  EXPECT_EQ(verification_problem({1.0}, shard.data(), 3),
            "parameter element 1 of the shard is not finite");
}

}  // namespace
}  // namespace minipt
