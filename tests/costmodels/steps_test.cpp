// Measured training steps: the CSV loader (real rows of the vTrain A100 data,
// and one-line errors naming the row and column), the Programs they ran, the
// fast estimate against the roofline by hand, and the kernel-model fit
// recovering known parameters from steps it made itself.
#include <gtest/gtest.h>

#include <cmath>

#include "error_text.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::costmodels {
namespace {

using plait::testing::error_of;

const std::string sample_path = PLAIT_COSTMODELS_DATA "/vtrain_steps_sample.csv";
const std::string header =
    "# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,tensor parallelism,"
    "data parallelism,pipeline parallelism,iteration time (ms)\n";

StepLinks a100_links() {
  StepLinks links;
  links.ring = {.step_latency_s = 8.07e-6, .link_bytes_per_s = 3.253e11, .pass_bytes_per_s = 4.527e11};
  links.messages.segments = {{.max_bytes = 1LL << 62, .latency_s = 8.07e-6, .seconds_per_byte = 1 / 3.253e11}};
  return links;
}

TEST(Steps, TheSampleOfTheMeasuredRowsLoads) {
  const std::vector<StepMeasurement> steps = load_step_csv(sample_path);
  ASSERT_EQ(steps.size(), 48u);
  const StepMeasurement& first = steps.front();  // 2,16,8,1024,16,24,1024,1,1,2,372.160408
  EXPECT_EQ(first.line, 2);
  EXPECT_EQ(first.gpus, 2);
  EXPECT_EQ(first.global_batch, 16);
  EXPECT_EQ(first.micro_batch, 8);
  EXPECT_EQ(first.hidden, 1024);
  EXPECT_EQ(first.layers, 24);
  EXPECT_EQ(first.pp, 2);
  EXPECT_DOUBLE_EQ(first.seconds, 0.372160408);
  // Columns are matched by name: another order and an extra column change nothing.
  const std::string reordered =
      "params,iteration time (ms),# GPUs,global batch,micro batch,hidden size,attention heads,# layers,"
      "sequence length,tensor parallelism,data parallelism,pipeline parallelism\n"
      "350M,372.160408,2,16,8,1024,16,24,1024,1,1,2\n";
  const StepMeasurement moved = parse_step_csv(reordered, "r.csv").front();
  EXPECT_EQ(moved.global_batch, first.global_batch);
  EXPECT_DOUBLE_EQ(moved.seconds, first.seconds);
}

TEST(Steps, ABadRowIsOneLineErrorNamingItsLineAndColumn) {
  const auto error = [](const std::string& row) { return error_of([&] { parse_step_csv(header + row, "s.csv"); }); };
  EXPECT_EQ(error("2,16,8,1024,16,24,1024,1,1,2,0\n"), "s.csv: line 2, iteration time (ms): \"0\" is not a positive number");
  EXPECT_EQ(error("2,16,8,1024,16,2.5,1024,1,1,2,10\n"),
            "s.csv: line 2, # layers: \"2.5\" is not a whole number up to 1048576");
  EXPECT_EQ(error("4,16,8,1024,16,24,1024,1,1,2,10\n"),
            "s.csv: line 2, # GPUs: tensor x data x pipeline parallelism = 2, not the 4 GPUs");
  EXPECT_EQ(error("4,24,8,1024,16,24,1024,1,2,2,10\n"),
            "s.csv: line 2, global batch: 24 is not whole micro-batches of 8 over 2 replicas");
  EXPECT_EQ(error("6,16,1,1024,16,24,1024,3,1,2,10\n"),
            "s.csv: line 2, tensor parallelism: 3 does not divide the 16 heads");
  EXPECT_EQ(error("2,16,8,1024,16,24,1024,1,1\n"), "s.csv: line 2: 9 fields, the header has 11");
  EXPECT_EQ(error_of([] { parse_step_csv("a,b\n1,2\n", "s.csv"); }),
            "s.csv: line 1: header has no \"# GPUs\" column");
  EXPECT_EQ(error_of([] { parse_step_csv(header, "s.csv"); }), "s.csv: no measured steps after the header");
}

TEST(Steps, EachRowBuildsTheMegatronStepItRan) {
  StepMeasurement step{.line = 2, .gpus = 8, .global_batch = 32, .micro_batch = 4, .hidden = 1024, .heads = 16,
                       .layers = 24, .seq = 1024, .tp = 2, .dp = 2, .pp = 2, .seconds = 0.22};
  const schedule::BuildSpec spec = megatron_step_spec(step);
  EXPECT_EQ(spec.ranks, 2);
  EXPECT_EQ(spec.replicas, 2);
  EXPECT_EQ(spec.micro_batches, 4);  // 32 / (4 x 2)
  EXPECT_TRUE(spec.recompute);
  EXPECT_EQ(spec.model.vocab, 50432);  // 50,257 padded to a multiple of 128 x 2
  EXPECT_EQ(spec.model.dtype, "fp16");
  const schedule::Program program = schedule::build_kind(megatron_step_kind, spec);
  EXPECT_EQ(program.ranks, 8);
}

// Optional columns say what a run ran beyond vTrain's full recompute: its
// recompute, sequence parallelism and ZeRO stage build into its step.
TEST(Steps, OptionalColumnsCarryRecomputeSequenceParallelismAndZero) {
  const std::string with = header.substr(0, header.size() - 1) + ",recompute,sequence parallelism,ZeRO stage\n";
  const StepMeasurement step =
      parse_step_csv(with + "8,32,4,1024,16,24,1024,2,2,2,220,selective,yes,1\n", "o.csv").front();
  EXPECT_EQ(step.recompute, "selective");
  EXPECT_TRUE(step.sequence_parallel);
  EXPECT_EQ(step.zero, 1);
  const schedule::BuildSpec spec = megatron_step_spec(step);
  EXPECT_FALSE(spec.recompute);
  EXPECT_TRUE(spec.model.selective_recompute);
  EXPECT_TRUE(spec.model.sequence_parallel);
  const schedule::Program program = schedule::build_kind(megatron_step_kind, spec);
  EXPECT_EQ(program.zero_stage, 1);
  // Absent, they are what vTrain ran.
  const StepMeasurement plain = parse_step_csv(header + "8,32,4,1024,16,24,1024,2,2,2,220\n", "p.csv").front();
  EXPECT_EQ(plain.recompute, "full");
  EXPECT_TRUE(megatron_step_spec(plain).recompute);
  const auto error = [&](const std::string& row) { return error_of([&] { parse_step_csv(with + row, "o.csv"); }); };
  EXPECT_EQ(error("8,32,4,1024,16,24,1024,2,2,2,220,some,no,0\n"),
            "o.csv: line 2, recompute: \"some\" is not full, selective or none");
  EXPECT_EQ(error("8,32,4,1024,16,24,1024,2,2,2,220,full,maybe,0\n"),
            "o.csv: line 2, sequence parallelism: \"maybe\" is not yes or no");
  EXPECT_EQ(error("8,32,4,1024,16,24,1024,2,2,2,220,full,no,4\n"),
            "o.csv: line 2, ZeRO stage: \"4\" is not a ZeRO stage: 0, 1, 2 or 3");
  EXPECT_EQ(error("4,32,4,1024,16,24,1024,1,2,2,220,full,yes,0\n"),
            "o.csv: line 2, sequence parallelism: splits the sequence over tensor-parallel ranks: it needs tensor "
            "parallelism >= 2");
  EXPECT_EQ(error("4,32,4,1024,16,24,1024,2,1,2,220,full,no,2\n"),
            "o.csv: line 2, ZeRO stage: shards over data-parallel replicas: it needs data parallelism >= 2");
}

// On one rank without messages the estimate is the sum of the pricer's prices.
TEST(Steps, OneRanksEstimateIsTheSumOfItsOpsPrices) {
  StepMeasurement step{.line = 2, .gpus = 1, .global_batch = 4, .micro_batch = 2, .hidden = 256, .heads = 4,
                       .layers = 3, .seq = 64, .tp = 1, .dp = 1, .pp = 1, .seconds = 0.1};
  const schedule::Program program = schedule::build_kind(megatron_step_kind, megatron_step_spec(step));
  DeviceSheet sheet = device_sheet("a100-80gb");
  sheet.kernel_overhead_s = 3e-6;
  sheet.gemm_half_dim = 100;
  const auto pricer = make_analytic_pricer(sheet);
  double sum = 0;
  for (const auto& section : program.rank_programs[0].sections)
    for (const auto& op : section.ops) sum += pricer->op_seconds(program, op);
  EXPECT_NEAR(StepEstimator(program).seconds(*pricer, a100_links()), sum, 1e-12 * sum);
}

std::vector<StepEstimator> estimators_of(const std::vector<StepMeasurement>& steps) {
  std::vector<StepEstimator> estimators;
  for (const StepMeasurement& step : steps)
    estimators.emplace_back(schedule::build_kind(megatron_step_kind, megatron_step_spec(step)));
  return estimators;
}

// The kernel model the synthetic steps are made with.
DeviceSheet true_sheet() {
  DeviceSheet truth = device_sheet("a100-80gb");
  truth.efficiency = 0.8, truth.gemm_half_dim = 150, truth.memory_efficiency = 0.6;
  truth.kernel_overhead_s = 40e-6, truth.message_overhead_s = 500e-6;
  return truth;
}

TEST(Steps, TheFitRecoversTheParametersThatMadeTheSteps) {
  std::vector<StepMeasurement> steps = load_step_csv(sample_path);
  const std::vector<StepEstimator> estimators = estimators_of(steps);
  const DeviceSheet truth = true_sheet();
  const auto pricer = make_analytic_pricer(truth);
  for (std::size_t i = 0; i < steps.size(); ++i) steps[i].seconds = estimators[i].seconds(*pricer, a100_links());
  const KernelFit fit = fit_kernel_model(steps, estimators, device_sheet("a100-80gb"), a100_links());
  EXPECT_NEAR(fit.device.efficiency, 0.8, 0.02 * 0.8);
  EXPECT_NEAR(fit.device.gemm_half_dim, 150, 0.05 * 150);
  EXPECT_NEAR(fit.device.memory_efficiency, 0.6, 0.02 * 0.6);
  EXPECT_NEAR(fit.device.kernel_overhead_s, 40e-6, 0.02 * 40e-6);
  EXPECT_NEAR(fit.device.message_overhead_s, 500e-6, 0.05 * 500e-6);
  EXPECT_LT(fit.mean_abs_error, 1e-3);
  for (const ShapeFactors& f : fit.shape_factors) {  // nothing left for them to explain
    EXPECT_NEAR(f.block, 1, 0.01);
    EXPECT_NEAR(f.ends, 1, 0.03);
  }
  // Held out, each fold's fit predicts the rows it did not see as well.
  const std::vector<double> held_out = cross_validate(steps, estimators, device_sheet("a100-80gb"), a100_links(), 4);
  for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_NEAR(held_out[i] / steps[i].seconds, 1, 0.01) << "line " << steps[i].line;
  EXPECT_EQ(summarize_errors(steps, held_out).front().group, "all");
}

// Steps made by a model whose kernels at one shape are off the smooth model
// (block steps x 1.3, ends x 0.7): the fit gives that shape factors that way
// (less than the truth: the smooth model, fitted to every row, leans towards
// it), the other shapes next to none, and predicts the rows far better than
// the smooth model alone; held out by row, that shape's rows are predicted
// with its factors, by shape with the smooth model, which does not know them.
TEST(Steps, TheFitFindsTheShapeTheSmoothModelMisses) {
  std::vector<StepMeasurement> steps = load_step_csv(sample_path);
  const std::vector<StepEstimator> estimators = estimators_of(steps);
  const DeviceSheet truth = true_sheet();
  // The sample's TP 1, micro batch 4, hidden 1024 rows: 6, at 12-24 layers on 1-4 stages (line 7 one of them).
  const std::size_t line_7 = 5;
  ASSERT_EQ(steps[line_7].line, 7);
  const schedule::ModelDesc missed = estimators[line_7].shape();
  ASSERT_EQ(missed.tensor_parallel, 1);
  ASSERT_EQ(missed.batch, 4);
  ASSERT_EQ(missed.d_model, 1024);
  const auto pricer = make_analytic_pricer(truth, {{missed, 1.3, 0.7}});
  for (std::size_t i = 0; i < steps.size(); ++i) steps[i].seconds = estimators[i].seconds(*pricer, a100_links());
  const KernelFit fit = fit_kernel_model(steps, estimators, device_sheet("a100-80gb"), a100_links());
  EXPECT_LT(fit.mean_abs_error, fit.smooth_mean_abs_error / 2);
  for (const ShapeFactors& f : fit.shape_factors) {
    if (f.shape == missed) {
      EXPECT_GT(f.block, 1.15);
      EXPECT_LT(f.ends, 0.9);
    } else {
      EXPECT_NEAR(f.block, 1, 0.1) << f.rows << " rows, TP " << f.shape.tensor_parallel;
      EXPECT_NEAR(f.ends, 1, 0.1) << f.rows << " rows, TP " << f.shape.tensor_parallel;
    }
  }
  const std::vector<double> by_row = cross_validate(steps, estimators, device_sheet("a100-80gb"), a100_links(), 4);
  const std::vector<double> by_shape =
      cross_validate(steps, estimators, device_sheet("a100-80gb"), a100_links(), 4, FoldBy::shape);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!(estimators[i].shape() == missed)) continue;
    EXPECT_NEAR(by_row[i] / steps[i].seconds, 1, 0.05) << "line " << steps[i].line;
    EXPECT_LT(by_shape[i] / steps[i].seconds, 0.9) << "line " << steps[i].line;  // blocks priced ~1 / 1.3
  }
  EXPECT_EQ(error_of([&] { cross_validate(steps, estimators, device_sheet("a100-80gb"), a100_links(), 99, FoldBy::shape); })
                .substr(0, 16),
            "folds: 99 folds ");
}

}  // namespace
}  // namespace plait::costmodels
