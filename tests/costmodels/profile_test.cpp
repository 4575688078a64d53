#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "profile_fixture.hpp"

namespace plait::costmodels {
namespace {

using nlohmann::json;

json valid_json() { return json::parse(dump_profile(testing::small_profile())); }

// The message of the error that parsing `document` throws ("" if none).
std::string parse_error(const json& document) {
  try {
    parse_profile(document.dump(), "p.json");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(Profile, RoundTripsThroughJson) {
  const Profile profile = testing::small_profile();
  EXPECT_EQ(parse_profile(dump_profile(profile)), profile);
}

TEST(Profile, RoundTripsThroughAFile) {
  const Profile profile = testing::small_profile();
  const std::string path = ::testing::TempDir() + "profile_round_trip.json";
  save_profile(profile, path);
  EXPECT_EQ(load_profile(path), profile);
  std::remove(path.c_str());
}

TEST(Profile, NetworkIsOptional) {
  Profile profile = testing::small_profile();
  profile.network.reset();
  EXPECT_EQ(parse_profile(dump_profile(profile)), profile);
}

TEST(Profile, FindsMeasurementsByKeyAndShape) {
  const Profile profile = testing::small_profile();
  auto shape = parse_shape_name("d256.h4.s128.b8.r4.fp32.causal");
  ASSERT_NE(profile.find("block.fwd", shape), nullptr);
  EXPECT_EQ(profile.find("block.fwd", shape)->alone.median_s, 0.02);
  EXPECT_EQ(profile.find("block.adj", shape), nullptr);
  shape.batch = 4;
  EXPECT_EQ(profile.find("block.fwd", shape), nullptr);
}

TEST(Profile, SpeedReferencesAreOptionalAndFoundByShape) {
  Profile profile = testing::small_profile();
  auto shape = parse_shape_name("d256.h4.s128.b8.r4.fp32.causal");
  ASSERT_NE(profile.find_speed_reference(shape), nullptr);
  EXPECT_EQ(profile.find_speed_reference(shape)->contended_s, 0.0208);
  shape.causal = false;
  EXPECT_EQ(profile.find_speed_reference(shape), nullptr);
  profile.speed_references.clear();
  EXPECT_EQ(dump_profile(profile).find("speed_references"), std::string::npos);
  EXPECT_EQ(parse_profile(dump_profile(profile)), profile);
}

TEST(Profile, ShapeFactorsAreOptionalAndKeepTheirTensorParallelismAndVocabulary) {
  Profile profile = testing::small_profile();
  const Profile read = parse_profile(dump_profile(profile));
  ASSERT_EQ(read.shape_factors.size(), 1u);
  EXPECT_EQ(read.shape_factors[0].shape.tensor_parallel, 2);
  EXPECT_EQ(read.shape_factors[0].shape.vocab, 50432);
  EXPECT_EQ(read.shape_factors[0].block, 1.19);
  profile.shape_factors.clear();
  EXPECT_EQ(dump_profile(profile).find("shape_factors"), std::string::npos);
  EXPECT_EQ(parse_profile(dump_profile(profile)), profile);
}

TEST(ProfileValidation, ShapeFactorsArePositiveAndTheirShapesAnyOtherShape) {
  json document = valid_json();
  document["shape_factors"][0]["shape"].erase("tensor_parallel");  // a shape's TP is 1 unless given
  EXPECT_EQ(parse_profile(document.dump(), "p.json").shape_factors[0].shape.tensor_parallel, 1);
  document["shape_factors"][0]["block"] = 0;
  document["shape_factors"][0]["shape"]["tensor_parallel"] = 0;
  document["shape_factors"][0].erase("ends");
  EXPECT_EQ(parse_error(document), "p.json: 3 problems: /shape_factors/0/shape/tensor_parallel: expected at least 1, "
                                   "got 0; /shape_factors/0/block: too small factor (0); /shape_factors/0: missing key "
                                   "\"ends\"");
}

TEST(ProfileValidation, SpeedReferencesNeedPositiveTimes) {
  json document = valid_json();
  document["speed_references"][0]["alone_s"] = 0;
  document["speed_references"][0].erase("contended_s");
  EXPECT_EQ(parse_error(document), "p.json: 2 problems: /speed_references/0: missing key \"contended_s\"; "
                                   "/speed_references/0/alone_s: must be > 0");
}

TEST(ProfileValidation, TheIdleSlowdownIsOptionalAndChecked) {
  json document = valid_json();
  document["speed_references"][0].erase("idle");  // profiles from before it: no slowdown
  EXPECT_EQ(parse_profile(document.dump(), "p.json").speed_references[0].idle, IdleSlowdown{});
  document["speed_references"][0]["idle"] = {{"slowdown", -0.1}, {"time_constant_s", 0}};
  EXPECT_EQ(parse_error(document), "p.json: /speed_references/0/idle/slowdown: negative slowdown (-0.1)");
  document["speed_references"][0]["idle"] = {{"slowdown", 0.5}, {"time_constant_s", 0}};
  EXPECT_EQ(parse_error(document),
            "p.json: /speed_references/0/idle/time_constant_s: must be > 0 when the slowdown is");
}

TEST(ProfileValidation, TheSerialFactorIsOptionalAndPositive) {
  json document = valid_json();
  document["speed_references"][0].erase("serial_factor");
  EXPECT_EQ(parse_profile(document.dump(), "p.json").speed_references[0].serial_factor, 1);
  document["speed_references"][0]["serial_factor"] = 0;
  EXPECT_EQ(parse_error(document), "p.json: /speed_references/0/serial_factor: must be > 0");
}

TEST(ProfileValidation, TheGradientAllreduceIsOptionalAndItsPassPositive) {
  json document = valid_json();
  document["network"].erase("gradient_allreduce");
  document["network"].erase("gradient_pass_bytes_per_s");
  const Profile profile = parse_profile(document.dump(), "p.json");
  EXPECT_TRUE(profile.network->gradient_allreduce.empty());
  EXPECT_EQ(profile.network->gradient_pass_bytes_per_s, 0);
  document = valid_json();
  document["network"]["gradient_pass_bytes_per_s"] = 0;
  document["network"]["gradient_allreduce"][0]["bytes"] = 0;
  EXPECT_EQ(parse_error(document),
            "p.json: 2 problems: /network/gradient_allreduce/0/bytes: expected at least 1, got 0; "
            "/network/gradient_pass_bytes_per_s: must be > 0");
}

TEST(IdleSlowdown, GrowsWithTheIdleTimeToOnePlusTheSlowdown) {
  const IdleSlowdown idle{0.5, 2e-3};
  EXPECT_EQ(idle.factor(0), 1);
  EXPECT_EQ(idle.factor(-1), 1);
  EXPECT_DOUBLE_EQ(idle.factor(2e-3), 1 + 0.5 * (1 - std::exp(-1.0)));
  EXPECT_NEAR(idle.factor(1), 1.5, 1e-12);
  EXPECT_EQ(IdleSlowdown{}.factor(1), 1);
}

TEST(IdleSlowdown, FitRecoversTheSlowdownFromNoisyStepsAfterWaits) {
  // Steps after waits of 0.1-20 ms at slowdown 0.45, +-10 % noise around it;
  // and many steps right after another (idle < 100 us), far off, that the fit ignores.
  const IdleSlowdown truth{0.45, idle_time_constant_s};
  std::vector<std::pair<double, double>> samples;
  for (int i = 0; i < 40; ++i) {
    const double idle_s = 1e-4 * std::pow(200.0, i / 39.0);
    samples.emplace_back(idle_s, truth.factor(idle_s) * (i % 2 ? 1.1 : 0.9));
    samples.emplace_back(20e-6, 3.0);
  }
  const IdleSlowdown fitted = fit_idle_slowdown(samples);
  EXPECT_NEAR(fitted.slowdown, 0.45, 0.03);
  EXPECT_EQ(fitted.time_constant_s, idle_time_constant_s);
  // Too few steps after a wait, or none slower: no slowdown.
  EXPECT_EQ(fit_idle_slowdown(std::span(samples).first(14)), IdleSlowdown{});
  std::vector<std::pair<double, double>> faster(10, {5e-3, 0.9});
  EXPECT_EQ(fit_idle_slowdown(faster), IdleSlowdown{});
}

TEST(ProfileValidation, MissingKeyIsNamedWithItsPointer) {
  json document = valid_json();
  document["ops"][0]["alone"].erase("mean_s");
  EXPECT_EQ(parse_error(document), "p.json: /ops/0/alone: missing key \"mean_s\"");
}

TEST(ProfileValidation, NegativeTimeIsRefused) {
  json document = valid_json();
  document["ops"][1]["alone"]["median_s"] = -0.5;
  EXPECT_EQ(parse_error(document), "p.json: /ops/1/alone/median_s: negative time (-0.5)");
}

TEST(ProfileValidation, WrongTimeUnitIsRefused) {
  json document = valid_json();
  document["units"]["time"] = "ms";
  EXPECT_EQ(parse_error(document), "p.json: /units/time: wrong unit \"ms\", expected \"s\"");
}

TEST(ProfileValidation, MissingUnitsAreRefused) {
  json document = valid_json();
  document.erase("units");
  EXPECT_EQ(parse_error(document), "p.json: /: missing key \"units\"");
}

TEST(ProfileValidation, WrongFormatAndVersionAreRefused) {
  json document = valid_json();
  document["format"] = "plait.program";
  document["version"] = 7;
  EXPECT_EQ(parse_error(document),
            "p.json: 2 problems: /format: expected \"plait.profile\", got \"plait.program\"; "
            "/version: unsupported version 7 (this plait reads 1)");
}

TEST(ProfileValidation, UnknownCostKeyIsRefused) {
  json document = valid_json();
  document["ops"][0]["key"] = "block.sideways";
  EXPECT_EQ(parse_error(document),
            "p.json: /ops/0/key: unknown compute cost key \"block.sideways\"");
}

TEST(ProfileValidation, BadShapeFieldsAreRefused) {
  json document = valid_json();
  document["ops"][0]["shape"]["heads"] = 0;
  document["ops"][0]["shape"]["dtype"] = "int8";
  EXPECT_EQ(parse_error(document),
            "p.json: 2 problems: /ops/0/shape/heads: expected at least 1, got 0; "
            "/ops/0/shape/dtype: expected fp32, bf16 or fp16, got \"int8\"");
}

TEST(ProfileValidation, UnsortedNetworkSegmentsAreRefused) {
  json document = valid_json();
  document["network"]["segments"][1]["max_bytes"] = 100;
  EXPECT_EQ(parse_error(document), "p.json: /network/segments/1/max_bytes: segments must be "
                                   "sorted by increasing max_bytes");
}

TEST(ProfileValidation, NegativeLatencyAndZeroRepetitionsAreRefused) {
  json document = valid_json();
  document["network"]["segments"][0]["latency_s"] = -1e-6;
  document["network"]["pingpong"][0]["repetitions"] = 0;
  EXPECT_EQ(parse_error(document),
            "p.json: 2 problems: /network/pingpong/0/repetitions: expected at least 1, got 0; "
            "/network/segments/0/latency_s: negative time (-1e-06)");
}

TEST(ProfileValidation, WrongTypesAreRefused) {
  json document = valid_json();
  document["machine"]["cores"] = "two";
  document["ops"] = json::object();
  EXPECT_EQ(parse_error(document), "p.json: 2 problems: /machine/cores: expected an integer; "
                                   "/ops: expected an array");
}

TEST(ProfileValidation, InvalidJsonAndMissingFilesAreErrors) {
  try {
    parse_profile("{\"format\": ", "broken.json");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.where(), "broken.json");
    EXPECT_EQ(error.why().rfind("not valid JSON", 0), 0u) << error.why();
  }
  try {
    load_profile("/nonexistent/profile.json");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "/nonexistent/profile.json: cannot open");
  }
}

TEST(ShapeName, RoundTripsAndRejectsBadText) {
  const auto shape = parse_shape_name("d384.h6.s64.b4.r2.bf16.full");
  EXPECT_EQ(shape.d_model, 384);
  EXPECT_EQ(shape.heads, 6);
  EXPECT_EQ(shape.seq, 64);
  EXPECT_EQ(shape.batch, 4);
  EXPECT_EQ(shape.mlp_ratio, 2);
  EXPECT_EQ(shape.dtype, "bf16");
  EXPECT_FALSE(shape.causal);
  EXPECT_EQ(shape_name(shape), "d384.h6.s64.b4.r2.bf16.full");
  try {
    parse_shape_name("d256.h3.s128.b8.r4.fp32.causal");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(),
              "d_model must be divisible by heads (expected e.g. d256.h4.s128.b8.r4.fp32.causal)");
  }
  EXPECT_THROW(parse_shape_name("d256.h4.s128"), Error);
  EXPECT_THROW(parse_shape_name("d256.h4.sx.b8.r4.fp32.causal"), Error);
}

}  // namespace
}  // namespace plait::costmodels
