#include <gtest/gtest.h>

#include "plait/costmodels/analytic.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

namespace keys = schedule::cost_keys;

const DeviceSheet toy{"toy", 100e9, 400e9, 10e9, 1.0};

TEST(Roofline, ComputeBoundPartTakesFlopsOverPeak) {
  EXPECT_DOUBLE_EQ(roofline_seconds(schedule::Work{1e9, 1e6}, toy, "fp32"), 1e9 / 100e9);
}

TEST(Roofline, MemoryBoundPartTakesBytesOverBandwidth) {
  EXPECT_DOUBLE_EQ(roofline_seconds(schedule::Work{1e6, 1e9}, toy, "fp32"), 1e9 / 10e9);
}

TEST(Roofline, Bf16UsesTheBf16PeakAndFallsBackToFp32) {
  EXPECT_DOUBLE_EQ(roofline_seconds(schedule::Work{4e9, 0}, toy, "bf16"), 4e9 / 400e9);
  DeviceSheet no_bf16 = toy;
  no_bf16.peak_flops_bf16 = 0;
  EXPECT_DOUBLE_EQ(roofline_seconds(schedule::Work{4e9, 0}, no_bf16, "bf16"), 4e9 / 100e9);
}

// Kernels of 1, 5 and 1 s (bytes at 10 GB/s) launched 2 s apart: the first
// ends at 2 + 1, the second starts when it does (launched at 4) and ends at 9,
// the third, launched at 6, waits for it and ends at 10.
TEST(Roofline, KernelsRunOnceLaunchedAndTheirPredecessorIsDone) {
  DeviceSheet gpu = toy;
  gpu.kernel_overhead_s = 2;
  const OpWork work{{{"a", 0, 10e9}, {"b", 0, 50e9}, {"c", 0, 10e9}}};
  EXPECT_DOUBLE_EQ(device_seconds(work, gpu, "fp32"), 10);
  gpu.kernel_overhead_s = 0;  // no launch cost: the roofline sum
  EXPECT_DOUBLE_EQ(device_seconds(work, gpu, "fp32"), 7);
  gpu.kernel_overhead_s = 10;  // launch-bound: the last launch plus the last kernel
  EXPECT_DOUBLE_EQ(device_seconds(work, gpu, "fp32"), 31);
  // GEMM saturation and memory efficiency: a GEMM of smallest dimension 100 at
  // half dimension 100 runs at half speed; memory-bound parts at 0.5 twice as long.
  gpu.kernel_overhead_s = 0, gpu.gemm_half_dim = 100, gpu.memory_efficiency = 0.5;
  EXPECT_DOUBLE_EQ(roofline_seconds(WorkPart{"gemm", 100e9, 0, 100}, gpu, "fp32"), 2);
  EXPECT_DOUBLE_EQ(roofline_seconds(WorkPart{"copy", 0, 10e9}, gpu, "fp32"), 2);
}

TEST(Roofline, PartsArePricedSeparatelyAndSummed) {
  const OpWork work{{{"gemm", 1e9, 1e6}, {"softmax", 1e6, 1e9}}};
  EXPECT_DOUBLE_EQ(roofline_seconds(work, toy, "fp32"), 0.01 + 0.1);
  EXPECT_DOUBLE_EQ(work.total().flops, 1e9 + 1e6);
  EXPECT_DOUBLE_EQ(work.total().bytes, 1e6 + 1e9);
}

TEST(Roofline, RejectsASheetWithoutFigures) {
  try {
    roofline_seconds(schedule::Work{1, 1}, DeviceSheet{"empty", 0, 0, 0, 1}, "fp32");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              "device sheet \"empty\": peak FLOP/s and memory bandwidth must be positive");
  }
}

schedule::ModelDesc shape(int d, int heads, int seq, int batch) {
  schedule::ModelDesc model;
  model.d_model = d, model.heads = heads, model.seq = seq, model.batch = batch;
  return model;
}

double flops_of(const OpWork& work, const std::string& part) {
  for (const WorkPart& p : work.parts) {
    if (p.name == part) return p.flops;
  }
  return -1;
}

TEST(TransformerWork, ForwardGemmsAndAttentionMatchClosedForms) {
  const auto work = transformer_work(shape(256, 4, 128, 8));
  const OpWork& forward = work.at(std::string(keys::block_forward));
  const double n = 8 * 128, d = 256;
  EXPECT_DOUBLE_EQ(flops_of(forward, "qkv"), 6 * n * d * d);
  EXPECT_DOUBLE_EQ(flops_of(forward, "out.proj"), 2 * n * d * d);
  EXPECT_DOUBLE_EQ(flops_of(forward, "mlp.up") + flops_of(forward, "mlp.down"), 16 * n * d * d);
  EXPECT_DOUBLE_EQ(flops_of(forward, "scores") + flops_of(forward, "attn.v"),
                   4.0 * 8 * 128 * 128 * d);
  // GEMM FLOPs dominate: 24nd^2 + 4BS^2d, elementwise parts add a few percent.
  const double gemms = 24 * n * d * d + 4.0 * 8 * 128 * 128 * d;
  EXPECT_GT(forward.total().flops, gemms);
  EXPECT_LT(forward.total().flops, 1.05 * gemms);
}

TEST(TransformerWork, AdjointBackPropagatesAndGradientAddsWeightGemms) {
  const auto work = transformer_work(shape(256, 4, 128, 8));
  const double forward = work.at(std::string(keys::block_forward)).total().flops;
  const double adjoint = work.at(std::string(keys::block_adjoint)).total().flops;
  const double gradient = work.at(std::string(keys::block_gradient)).total().flops;
  const double n = 8 * 128, d = 256, weight_gemms = 24 * n * d * d;
  // Input gradients: 1x the weight GEMMs, 2x attention and elementwise.
  EXPECT_GT(adjoint, 1.0 * forward);
  EXPECT_LT(adjoint, 1.15 * forward);
  EXPECT_NEAR(gradient - adjoint, weight_gemms, 0.01 * weight_gemms);
}

TEST(TransformerWork, RecomputingAdjointAddsOneForward) {
  const auto work = transformer_work(shape(256, 4, 128, 8));
  for (const auto [kept, recomputed] : {std::pair{keys::block_adjoint, keys::block_adjoint_recompute},
                                        std::pair{keys::block_gradient, keys::block_gradient_recompute}}) {
    EXPECT_DOUBLE_EQ(work.at(std::string(recomputed)).total().flops,
                     work.at(std::string(kept)).total().flops +
                         work.at(std::string(keys::block_forward)).total().flops);
  }
}

TEST(TransformerWork, VectorOpsMoveWholeStatesAndCopiesAlias) {
  auto model = shape(256, 4, 128, 8);
  const double elements = 8.0 * 128 * 256, state_bytes = elements * 4;
  auto work = transformer_work(model);
  EXPECT_DOUBLE_EQ(work.at(std::string(keys::vec_sub)).total().bytes, 3 * state_bytes);
  EXPECT_DOUBLE_EQ(work.at(std::string(keys::vec_norm)).total().bytes, elements * (4 + 8 + 16 + 8));
  EXPECT_DOUBLE_EQ(work.at(std::string(keys::vec_copy)).total().bytes, 0);
  EXPECT_DOUBLE_EQ(work.at(std::string(keys::vec_zero)).total().flops, 0);
  model.dtype = "bf16";
  work = transformer_work(model);
  EXPECT_DOUBLE_EQ(work.at(std::string(keys::vec_sub)).total().bytes, 3 * elements * 2);
}

TEST(TransformerWork, RejectsOtherModelsAndBadSizes) {
  schedule::ModelDesc linear;
  linear.kind = "linear";
  EXPECT_THROW(transformer_work(linear), Error);
  try {
    transformer_work(shape(250, 4, 128, 8));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(), "sizes must be positive and d_model divisible by heads");
  }
}

TEST(KeyFit, RecoversOverheadAndEfficiency) {
  std::vector<RooflineSample> samples;
  for (double roofline : {1e-4, 3e-4, 1e-3, 5e-3}) {
    samples.push_back({roofline, 20e-6 + roofline / 0.6});
  }
  const KeyFit fit = fit_key(samples);
  EXPECT_NEAR(fit.overhead_s, 20e-6, 1e-9);
  EXPECT_NEAR(fit.efficiency, 0.6, 1e-6);
  EXPECT_DOUBLE_EQ(fit.seconds(1e-3), fit.overhead_s + 1e-3 / fit.efficiency);
}

TEST(KeyFit, WorkFreeOpsCostTheirMeanTime) {
  const std::vector<RooflineSample> samples = {{0, 1e-6}, {0, 3e-6}};
  const KeyFit fit = fit_key(samples);
  // Least squares on relative error: sum(1/t) / sum(1/t^2) = 1.2 us.
  EXPECT_NEAR(fit.overhead_s, 1.2e-6, 1e-12);
  EXPECT_DOUBLE_EQ(fit.seconds(0), fit.overhead_s);
}

TEST(KeyFit, OneSampleFitsThroughTheOrigin) {
  const std::vector<RooflineSample> one = {{1e-3, 4e-3}};
  const KeyFit fit = fit_key(one);
  EXPECT_EQ(fit.overhead_s, 0);
  EXPECT_NEAR(fit.efficiency, 0.25, 1e-12);
}

TEST(Sheets, ShippedSheetsHaveTheirPublicFigures) {
  EXPECT_DOUBLE_EQ(device_sheet("h100-sxm").memory_bandwidth, 3.35e12);
  EXPECT_DOUBLE_EQ(device_sheet("h200").memory_bandwidth, 4.8e12);
  EXPECT_DOUBLE_EQ(device_sheet("a100-80gb").peak_flops_bf16, 312e12);
  EXPECT_DOUBLE_EQ(link_sheet("infiniband-ndr").bandwidth_bytes_per_s, 50e9);
  EXPECT_DOUBLE_EQ(link_sheet("nvlink4").bandwidth_bytes_per_s, 450e9);
  for (const auto& name : device_sheet_names()) EXPECT_EQ(device_sheet(name).name, name);
  for (const auto& name : link_sheet_names()) EXPECT_EQ(link_sheet(name).name, name);
}

TEST(Sheets, UnknownNameListsTheKnownOnes) {
  try {
    device_sheet("tpu-v9");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(),
              "unknown sheet \"tpu-v9\" (known: local-cpu, a100-80gb, h100-sxm, h200, v100-sxm2-32gb)");
  }
  EXPECT_THROW(link_sheet("carrier-pigeon"), Error);
}

}  // namespace
}  // namespace plait::costmodels
