#include <gtest/gtest.h>

#include <cmath>

#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"
#include "profile_fixture.hpp"

namespace plait::costmodels {
namespace {

schedule::Program program_of(const std::string& shape) {
  schedule::Program program;
  program.layers = 4;
  program.model = parse_shape_name(shape);
  return program;
}

schedule::Op op_of(schedule::OpKind kind, bool accumulate_grad = false) {
  schedule::Op op;
  op.kind = kind;
  op.accumulate_grad = accumulate_grad;
  return op;
}

TEST(AnalyticPricer, PricesTheRooflineOverEfficiency) {
  DeviceSheet device = device_sheet("h100-sxm");
  device.efficiency = 0.5;
  const auto pricer = make_analytic_pricer(device);
  const auto program = program_of("d1024.h16.s1024.b8.r4.bf16.causal");
  const auto work = transformer_work(program.model);
  const double roofline = roofline_seconds(work.at("block.fwd"), device, "bf16");
  EXPECT_DOUBLE_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::step)), roofline / 0.5);
  EXPECT_DOUBLE_EQ(
      pricer->op_seconds(program, op_of(schedule::OpKind::step_adjoint, true)),
      roofline_seconds(work.at("block.adj_grad"), device, "bf16") / 0.5);
}

TEST(AnalyticPricer, CommunicationIsFree) {
  const auto pricer = make_analytic_pricer(device_sheet("a100-80gb"));
  const auto program = program_of("d256.h4.s128.b8.r4.fp32.causal");
  EXPECT_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::send)), 0);
  EXPECT_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::allreduce)), 0);
  EXPECT_GT(pricer->op_seconds(program, op_of(schedule::OpKind::sub)), 0);
  EXPECT_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::copy)), 0);  // aliases
}

TEST(ProfilePricer, UsesMeasurementsWhereTheProfileHasThem) {
  const Profile profile = testing::small_profile();
  const auto program = program_of("d256.h4.s128.b8.r4.fp32.causal");
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, op_of(schedule::OpKind::step)),
                   0.02);
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile, Contention::contended)
                       ->op_seconds(program, op_of(schedule::OpKind::step)),
                   0.021);
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, op_of(schedule::OpKind::copy)),
                   1e-4);
}

TEST(ProfilePricer, FallsBackToTheFittedRooflineAtOtherShapes) {
  const Profile profile = testing::small_profile();
  const auto program = program_of("d512.h8.s128.b8.r4.fp32.causal");
  const auto work = transformer_work(program.model);
  const double forward = roofline_seconds(work.at("block.fwd"), profile.device, "fp32");
  const auto alone = make_profile_pricer(profile);
  EXPECT_DOUBLE_EQ(alone->op_seconds(program, op_of(schedule::OpKind::step)),
                   1e-4 + forward / 0.4);  // the key's fit
  const double adjoint = roofline_seconds(work.at("block.adj"), profile.device, "fp32");
  EXPECT_DOUBLE_EQ(alone->op_seconds(program, op_of(schedule::OpKind::step_adjoint)),
                   adjoint / 0.5);  // no fit for the key: the device's efficiency
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile, Contention::contended)
                       ->op_seconds(program, op_of(schedule::OpKind::step)),
                   (1e-4 + forward / 0.4) * 1.05);
}

TEST(ProfilePricer, AStepKeepingItsGraphIsItsOwnKeyOrPricedAsAPlainStep) {
  schedule::Op keep = op_of(schedule::OpKind::step);
  keep.graph = schedule::GraphUse::keep;
  ASSERT_EQ(schedule::cost_key(keep), "block.fwd_keep");
  const auto program = program_of("d256.h4.s128.b8.r4.fp32.causal");
  Profile profile = testing::small_profile();
  // A profile without block.fwd_keep (written before it had its own key): block.fwd's price.
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, keep), 0.02);
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile, Contention::contended)->op_seconds(program, keep), 0.021);
  // Measured: its own price, at the measured shape and (fitted) elsewhere.
  profile.ops.push_back({"block.fwd_keep", program.model, {0.03, 0.029, 0.028, 0.001, 3}, std::nullopt});
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, keep), 0.029);
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, op_of(schedule::OpKind::step)), 0.02);
}

TEST(ProfilePricer, TheIdleFactorIsTheShapesIdleSlowdown) {
  const Profile profile = testing::small_profile();
  const auto pricer = make_profile_pricer(profile, Contention::contended);
  const auto program = program_of("d256.h4.s128.b8.r4.fp32.causal");
  EXPECT_DOUBLE_EQ(pricer->idle_factor(program, 3e-3), 1 + 0.45 * (1 - std::exp(-1.0)));
  EXPECT_EQ(pricer->idle_factor(program, 0), 1);
  EXPECT_EQ(pricer->idle_factor(program_of("d128.h2.s64.b4.r4.fp32.causal"), 3e-3), 1);  // no reference there
  EXPECT_EQ(make_analytic_pricer(device_sheet("h100-sxm"))->idle_factor(program, 3e-3), 1);
}

TEST(ProfilePricer, ASerialProgramsBlockStepsCostTheSerialFactor) {
  Profile profile = testing::small_profile();
  profile.speed_references[0].serial_factor = 1.25;
  const auto pricer = make_profile_pricer(profile);
  auto program = program_of("d256.h4.s128.b8.r4.fp32.causal");
  program.kind = "mgrit";
  EXPECT_DOUBLE_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::step)), 0.02);
  program.kind = "serial";
  EXPECT_DOUBLE_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::step)), 0.025);
  EXPECT_DOUBLE_EQ(pricer->op_seconds(program, op_of(schedule::OpKind::copy)), 1e-4);  // not a block step
}

// A shape's factors scale its block steps and its ends (embedding, head and
// loss), nothing else, and no other shape (here: the same sizes on 4 ranks).
TEST(ShapeFactors, ScaleTheBlockStepsAndTheEndsOfTheirShapeOnly) {
  schedule::Program program = program_of("d1024.h16.s1024.b2.r4.fp16.causal");
  program.model.tensor_parallel = 2, program.model.vocab = 50432;
  const auto base = make_analytic_pricer(device_sheet("a100-80gb"));
  const auto corrected = make_analytic_pricer(device_sheet("a100-80gb"), {{program.model, 1.25, 0.5, 10}});
  const auto ratio = [&](const schedule::Program& p, schedule::OpKind kind) {
    return corrected->op_seconds(p, op_of(kind)) / base->op_seconds(p, op_of(kind));
  };
  EXPECT_DOUBLE_EQ(ratio(program, schedule::OpKind::step), 1.25);
  EXPECT_DOUBLE_EQ(ratio(program, schedule::OpKind::step_adjoint), 1.25);
  EXPECT_DOUBLE_EQ(ratio(program, schedule::OpKind::input), 0.5);
  EXPECT_DOUBLE_EQ(ratio(program, schedule::OpKind::loss), 0.5);
  EXPECT_DOUBLE_EQ(ratio(program, schedule::OpKind::sub), 1);
  schedule::Program other = program;
  other.model.tensor_parallel = 4;
  EXPECT_DOUBLE_EQ(ratio(other, schedule::OpKind::step), 1);
  // A profile's factors are applied by its pricer.
  const Profile profile = testing::small_profile();  // block 1.19 at this shape
  Profile without = profile;
  without.shape_factors.clear();
  const schedule::Op step = op_of(schedule::OpKind::step);
  EXPECT_DOUBLE_EQ(make_profile_pricer(profile)->op_seconds(program, step),
                   1.19 * make_profile_pricer(without)->op_seconds(program, step));
}

TEST(ProfileFit, FitsEfficiencyOverheadAndContention) {
  Profile profile = testing::small_profile();
  profile.ops.clear();
  const KeyFit truth{0.3, 50e-6, 1.04};
  for (const char* name : {"d128.h2.s64.b4.r4.fp32.causal", "d256.h4.s128.b8.r4.fp32.causal",
                           "d384.h6.s128.b4.r4.fp32.causal"}) {
    const auto shape = parse_shape_name(name);
    const double roofline =
        roofline_seconds(transformer_work(shape).at("block.fwd"), profile.device, "fp32");
    const double alone = truth.seconds(roofline);
    profile.ops.push_back({"block.fwd", shape, {alone, alone, alone, 0, 3},
                           Timing{alone * 1.04, alone * 1.04, alone * 1.04, 0, 3}});
  }
  fit_profile(profile);
  const KeyFit& fit = profile.fits.at("block.fwd");
  EXPECT_NEAR(fit.efficiency, 0.3, 1e-6);
  EXPECT_NEAR(fit.overhead_s, 50e-6, 1e-9);
  EXPECT_NEAR(fit.contention_factor, 1.04, 1e-12);
  // Without overhead the device efficiency is a little lower than the key's.
  EXPECT_LT(profile.device.efficiency, 0.3);
  EXPECT_GT(profile.device.efficiency, 0.2);
}

}  // namespace
}  // namespace plait::costmodels
