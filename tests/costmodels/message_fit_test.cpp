#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "plait/costmodels/message_fit.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

// Eager up to 4 KiB, a middle regime up to 1 MiB, rendezvous beyond.
MessageModel three_regimes() {
  return {{{4096, 0.4e-6, 1.0 / 8e9}, {1 << 20, 3.5e-6, 1.0 / 7e9}, {1 << 30, 40e-6, 1.0 / 5.4e9}}};
}

std::vector<MessageSample> samples_of(const MessageModel& model, double noise, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<double> jitter(-noise, noise);
  std::vector<MessageSample> samples;
  for (std::int64_t bytes = 8; bytes <= (std::int64_t{64} << 20); bytes *= 2) {
    samples.push_back({bytes, model.seconds(bytes) * (1 + jitter(random))});
  }
  return samples;
}

TEST(MessageModel, PicksTheSegmentCoveringTheSize) {
  const MessageModel model = three_regimes();
  EXPECT_DOUBLE_EQ(model.seconds(4096), 0.4e-6 + 4096 / 8e9);
  EXPECT_DOUBLE_EQ(model.seconds(4097), 3.5e-6 + 4097 / 7e9);
  EXPECT_DOUBLE_EQ(model.seconds(std::int64_t{2} << 30), 40e-6 + (std::int64_t{2} << 30) / 5.4e9);
  EXPECT_EQ(MessageModel{}.seconds(100), 0);
}

TEST(MessageFit, RecoversAlphaBetaAndBreakPointsWithoutNoise) {
  const MessageModel truth = three_regimes();
  const MessageFit fit = fit_message_model(samples_of(truth, 0, 1));
  ASSERT_EQ(fit.model.segments.size(), 3u);
  EXPECT_EQ(fit.model.segments[0].max_bytes, 4096);
  EXPECT_EQ(fit.model.segments[1].max_bytes, 1 << 20);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(fit.model.segments[i].latency_s, truth.segments[i].latency_s,
                1e-6 * truth.segments[i].latency_s);
    EXPECT_NEAR(fit.model.segments[i].seconds_per_byte, truth.segments[i].seconds_per_byte,
                1e-6 * truth.segments[i].seconds_per_byte);
  }
  EXPECT_LT(fit.max_relative_error, 1e-9);
}

TEST(MessageFit, RecoversParametersWithTwoPercentNoise) {
  const MessageModel truth = three_regimes();
  for (unsigned seed = 1; seed <= 5; ++seed) {
    const MessageFit fit = fit_message_model(samples_of(truth, 0.02, seed));
    ASSERT_EQ(fit.model.segments.size(), 3u) << "seed " << seed;
    EXPECT_EQ(fit.model.segments[0].max_bytes, 4096) << "seed " << seed;
    EXPECT_EQ(fit.model.segments[1].max_bytes, 1 << 20) << "seed " << seed;
    // Latency is seen only at small sizes, bandwidth only at large ones.
    EXPECT_NEAR(fit.model.segments[0].latency_s, 0.4e-6, 0.04 * 0.4e-6);
    EXPECT_NEAR(fit.model.segments[1].latency_s, 3.5e-6, 0.1 * 3.5e-6);
    EXPECT_NEAR(fit.model.segments[2].seconds_per_byte, 1 / 5.4e9, 0.03 / 5.4e9);
    EXPECT_NEAR(fit.model.segments[1].seconds_per_byte, 1 / 7e9, 0.05 / 7e9);
    EXPECT_LE(fit.max_relative_error, 0.05);
  }
}

TEST(MessageFit, OneStraightLineNeedsOneSegment) {
  const MessageModel truth{{{1 << 30, 2e-6, 1e-10}}};
  const MessageFit fit = fit_message_model(samples_of(truth, 0.01, 7));
  ASSERT_EQ(fit.model.segments.size(), 1u);
  EXPECT_NEAR(fit.model.segments[0].latency_s, 2e-6, 0.03 * 2e-6);
  EXPECT_NEAR(fit.model.segments[0].seconds_per_byte, 1e-10, 0.02e-10);
}

TEST(MessageFit, ReportsTheErrorAtEverySize) {
  const auto samples = samples_of(three_regimes(), 0.02, 3);
  const MessageFit fit = fit_message_model(samples);
  ASSERT_EQ(fit.errors.size(), samples.size());
  double worst = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(fit.errors[i].bytes, samples[i].bytes);
    const double expected = std::abs(fit.model.seconds(samples[i].bytes) - samples[i].seconds) /
                            samples[i].seconds;
    EXPECT_DOUBLE_EQ(fit.errors[i].relative_error, expected);
    worst = std::max(worst, expected);
  }
  EXPECT_DOUBLE_EQ(fit.max_relative_error, worst);
}

TEST(MessageFit, KeepsLatencyAndBandwidthNonNegative) {
  // Times that fall with size would give a negative slope.
  const std::vector<MessageSample> samples = {{8, 3e-6}, {16, 2.5e-6}, {32, 2e-6}};
  const MessageFit fit = fit_message_model(samples, {.max_segments = 1});
  EXPECT_GE(fit.model.segments[0].latency_s, 0);
  EXPECT_GT(fit.model.segments[0].seconds_per_byte, 0);
}

TEST(MessageFit, AFlatSegmentTakesTheBandwidthOfTheLargerMessages) {
  // Small messages all latency and noise (a fresh clone's calibration once fitted
  // them a zero slope, which the simulator refuses), then 5 GB/s from 4 KiB up.
  std::vector<MessageSample> samples = {{8, 2.2e-6}, {16, 2.1e-6}, {32, 2.0e-6}, {64, 1.9e-6}, {128, 1.8e-6}};
  for (std::int64_t bytes = 4096; bytes <= (1 << 22); bytes *= 2) samples.push_back({bytes, 5e-6 + bytes / 5e9});
  const MessageFit fit = fit_message_model(samples, {.max_segments = 2});
  ASSERT_EQ(fit.model.segments.size(), 2u);
  EXPECT_NEAR(fit.model.segments[1].seconds_per_byte, 1 / 5e9, 1e-13);
  for (const MessageSegment& segment : fit.model.segments) EXPECT_GT(segment.seconds_per_byte, 0);
  EXPECT_NEAR(fit.model.segments[0].seconds_per_byte, fit.model.segments[1].seconds_per_byte, 1e-15);
}

TEST(MessageFit, RejectsTooFewSizes) {
  const std::vector<MessageSample> one = {{8, 1e-6}, {8, 1.1e-6}};
  try {
    fit_message_model(one);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(), "need at least 2 distinct message sizes, got 1");
  }
}

TEST(MessageFit, RejectsNonPositiveTimes) {
  const std::vector<MessageSample> samples = {{8, 1e-6}, {16, -1e-6}};
  try {
    fit_message_model(samples);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(error.why().find("sample at 16 B has non-positive time"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace plait::costmodels

namespace plait::costmodels {
namespace {

TEST(GradientPassFit, RecoversThePassBeyondTheRingsMessages) {
  const MessageModel model = three_regimes();
  for (int replicas : {2, 4}) {
    std::vector<MessageSample> exchanges;
    for (std::int64_t bytes : {std::int64_t{4} << 20, std::int64_t{16} << 20}) {
      const double ring = 2.0 * (replicas - 1) * model.seconds(bytes / replicas);
      exchanges.push_back({bytes, ring + double(bytes) / 1.3e9});
    }
    EXPECT_NEAR(fit_gradient_pass(model, exchanges, replicas), 1.3e9, 1e3) << replicas << " replicas";
  }
}

TEST(GradientPassFit, ARemainderOnlyAtOneSizeIsFittedThereAndNoneIsNoPass) {
  const MessageModel model = three_regimes();
  const std::int64_t small = 1 << 20, large = 16 << 20;
  const double ring_small = 2 * model.seconds(small / 2), ring_large = 2 * model.seconds(large / 2);
  const std::vector<MessageSample> one{{small, ring_small * 0.9}, {large, ring_large + double(large) / 2e9}};
  EXPECT_NEAR(fit_gradient_pass(model, one, 2), 2e9, 1e3);
  const std::vector<MessageSample> none{{small, ring_small}, {large, ring_large * 0.5}};
  EXPECT_EQ(fit_gradient_pass(model, none, 2), 0);
}

TEST(GradientPassFit, RefusesNoSamplesAndOneReplica) {
  const MessageModel model = three_regimes();
  const std::vector<MessageSample> samples{{1 << 20, 1e-3}};
  EXPECT_THROW(fit_gradient_pass(model, {}, 2), Error);
  EXPECT_THROW(fit_gradient_pass(model, samples, 1), Error);
}

}  // namespace
}  // namespace plait::costmodels
