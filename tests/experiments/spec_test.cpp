// Sweep specs: a valid spec expands into its grid; each bad spec gets its own
// message, listing every problem with its JSON pointer.
#include <gtest/gtest.h>

#include <string>

#include "error_text.hpp"
#include "detail/points.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

std::string header() { return R"("format": "plait.sweep", "version": 1, "name": "t")"; }

// The message of the plait::Error that parsing `body` throws.
std::string error_of(const std::string& body) {
  return plait::testing::error_of([&] { parse_sweep_spec("{" + body + "}", "spec.json"); });
}

TEST(SweepSpec, ExpandsEachGridOverTheBaseWithoutDuplicates) {
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(,
    "base": {"layers": 32, "ranks": 2, "model": {"d_model": 64, "heads": 2, "seq": 32, "batch": 2}},
    "grids": [{"levels": [2, 3], "cf": [2, 4]},
              {"levels": 2, "cf": 2, "model": [{"d_model": 128}], "mask": ["none"]},
              {"levels": [2], "cf": [2]}],
    "dtype": "fp32", "measure": {"steps": 4, "warmup": 1, "repeats": 2}})");
  ASSERT_EQ(spec.points.size(), 5u);  // the third grid repeats a point of the first
  EXPECT_EQ(spec.points[0].levels, 2);
  EXPECT_EQ(spec.points[0].cf, 2);
  EXPECT_EQ(spec.points[3].cf, 4);
  EXPECT_EQ(spec.points[0].ranks, 2);
  EXPECT_EQ(spec.points[4].model.d_model, 128);
  EXPECT_EQ(spec.points[4].model.heads, 2);  // the rest of the model comes from the base
  EXPECT_EQ(spec.points[4].mask, "none");
  ASSERT_TRUE(spec.measure.has_value());
  EXPECT_EQ(spec.measure->repeats, 2);
  EXPECT_TRUE(spec.measure->speed_probe);  // the default
  EXPECT_EQ(point_name(spec.points[0]), "N32.L2.cf2.F.it2-1.P2.d64h2s32b2.causal.local");
}

TEST(SweepSpec, PipelineKindsAndMicroBatchesAreAxes) {
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(,
    "base": {"layers": 16, "model": {"d_model": 64, "heads": 2, "seq": 32, "batch": 4}},
    "grids": [{"kind": ["gpipe", "1f1b"], "micro_batches": [2, 4], "ranks": [1, 2]}, {"kind": "mgrit"}]})");
  ASSERT_EQ(spec.points.size(), 9u);
  EXPECT_EQ(spec.points[0].kind, "gpipe");
  EXPECT_EQ(spec.points[7].kind, "1f1b");
  EXPECT_EQ(spec.points[7].micro_batches, 4);
  EXPECT_TRUE(is_pipeline(spec.points[7]));
  EXPECT_FALSE(is_pipeline(spec.points[8]));
  EXPECT_EQ(point_name(spec.points[7]), "1f1b.M4.N16.P2.d64h2s32b4.causal.local");
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"kind": "pipedream"}, {"micro_batches": 2}])"),
            "spec.json: /grids/0/kind: must be \"1f1b\" or \"1f1b-interleaved\" or \"gpipe\" or \"mgrit\" or \"zb-h1\"; "
            "/grids: micro_batches 2 on a mgrit point: only pipelines (gpipe, 1f1b, 1f1b-interleaved, zb-h1) split the batch");
}

TEST(SweepSpec, InterleavingAndDataParallelismAreAxes) {
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(,
    "base": {"layers": 16, "model": {"d_model": 64, "heads": 2, "seq": 32, "batch": 8}},
    "grids": [{"kind": "1f1b-interleaved", "micro_batches": 2, "virtual_stages": [2, 4], "ranks": 2, "dp": [1, 2]},
              {"kind": "1f1b", "micro_batches": 2, "ranks": 2, "dp": 2, "dp_overlap": true}]})");
  ASSERT_EQ(spec.points.size(), 5u);
  EXPECT_TRUE(spec.points[4].dp_overlap);
  EXPECT_EQ(point_name(spec.points[4]), "1f1b.M2.N16.P2x2o.d64h2s32b8.causal.local");
  EXPECT_EQ(spec.points[3].virtual_stages, 4);
  EXPECT_EQ(spec.points[3].dp, 2);
  EXPECT_EQ(devices(spec.points[3]), 4);
  EXPECT_EQ(kind_label(spec.points[3]), "1f1b-interleaved M2 v4");
  EXPECT_EQ(point_name(spec.points[3]), "1f1b-interleaved.M2.v4.N16.P2x2.d64h2s32b8.causal.local");
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"dp": 0}])"), "spec.json: /grids/0/dp: must be an integer >= 1");
}

TEST(SweepSpec, ShardingSequenceParallelismAndSelectiveRecomputeAreAxes) {
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(,
    "base": {"layers": 4, "kind": "1f1b", "micro_batches": 2, "ranks": 2, "tp": 2, "vocab": 128,
             "model": {"d_model": 64, "heads": 2, "seq": 32, "batch": 8}},
    "grids": [{"dp": 2, "zero": [1, 3], "recompute": "selective", "sequence_parallel": [false, true]},
              {"recompute": ["none", "full", true]}]})");
  ASSERT_EQ(spec.points.size(), 6u);  // "full" and true are the same point
  const PointConfig& fsdp = spec.points[3];
  EXPECT_EQ(fsdp.zero, 3);
  EXPECT_TRUE(fsdp.sequence_parallel);
  EXPECT_TRUE(fsdp.selective_recompute);
  EXPECT_FALSE(fsdp.recompute);
  EXPECT_EQ(point_name(fsdp), "1f1b.M2.N4.P2x2.d64h2s32b8.causal.local.tp2.V128.sel.sp.z3");
  const schedule::Program program = detail::build_point_program(fsdp);
  EXPECT_EQ(program.zero_stage, 3);
  EXPECT_TRUE(program.model.sequence_parallel);
  EXPECT_TRUE(program.model.selective_recompute);
  EXPECT_TRUE(spec.points[5].recompute);
  EXPECT_FALSE(spec.points[4].recompute || spec.points[4].selective_recompute);
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"zero": 4}])"), "spec.json: /grids/0/zero: must be a ZeRO stage: 0, 1, 2 or 3");
  EXPECT_NE(error_of(header() + R"(, "grids": [{"recompute": "some"}])").find("/grids/0/recompute"), std::string::npos);
}

TEST(SweepSpec, FrozenBlocksAndTheRepackAreAxes) {
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(,
    "base": {"kind": "1f1b", "layers": 16, "ranks": 4, "micro_batches": 2,
             "model": {"d_model": 64, "heads": 2, "seq": 32, "batch": 8}},
    "grids": [{"frozen": [0, 12], "repack": [false, true]}]})");
  ASSERT_EQ(spec.points.size(), 4u);
  EXPECT_EQ(spec.points[2].frozen, 12);
  EXPECT_EQ(spec.points[2].ranks, 4);  // stages kept
  EXPECT_EQ(spec.points[3].ranks, 2);  // 12 of 16 frozen: half the work, on half the stages
  EXPECT_EQ(spec.points[3].dp, 2);
  EXPECT_EQ(spec.points[1].ranks, 4);  // nothing frozen: nothing to re-pack
  EXPECT_EQ(frozen_label(spec.points[3]), "F12 repacked");
  EXPECT_EQ(point_name(spec.points[3]), "1f1b.M2.F12r.N16.P2x2.d64h2s32b8.causal.local");
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"frozen": 2}, {"repack": 1}])"),
            "spec.json: /grids/1/repack: must be true or false; /grids: frozen 2 on a mgrit point: only pipelines "
            "(gpipe, 1f1b, 1f1b-interleaved, zb-h1) freeze blocks");
}

TEST(SweepSpec, NotJsonIsOneError) {
  EXPECT_EQ(error_of("\"format\": "), "spec.json: not valid JSON");
}

TEST(SweepSpec, WrongFormatAndVersionAreBothReported) {
  EXPECT_EQ(error_of(R"("format": "plait.program", "version": 2, "name": "t", "grids": [{"layers": 8}])"),
            "spec.json: /format: must be \"plait.sweep\"; /version: must be 1");
}

TEST(SweepSpec, MissingNameAndGrids) {
  EXPECT_EQ(error_of(R"("format": "plait.sweep", "version": 1)"),
            "spec.json: /name: must be a non-empty string; /grids: must be a non-empty list of grids");
}

TEST(SweepSpec, EveryBadAxisValueIsNamedByItsPointer) {
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"cf": [2, 1], "relax": ["F", "FC"], "layers": 0}])"),
            "spec.json: /grids/0/cf/1: must be an integer >= 2; /grids/0/layers: must be an integer >= 1; "
            "/grids/0/relax/1: must be \"F\" or \"FCF\"");
}

TEST(SweepSpec, UnknownAxesAndFieldsAreReported) {
  EXPECT_EQ(error_of(header() + R"(, "grid": [], "grids": [{"depth": [8]}], "measure": {"step": 3})"),
            "spec.json: /grid: unknown field; /measure/step: unknown field; /grids/0/depth: unknown axis");
}

TEST(SweepSpec, ModelHeadsMustDivideWidth) {
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"model": [{"d_model": 64, "heads": 3, "seq": 8, "batch": 1}]}])"),
            "spec.json: /grids/0/model/0/heads: must divide d_model (64)");
}

TEST(SweepSpec, BaseTakesOneValuePerAxis) {
  EXPECT_EQ(error_of(header() + R"(, "base": {"levels": [2, 3], "mask": "diagonal"}, "grids": [{"cf": 2}])"),
            "spec.json: /base/levels: must be one value (lists of values go in grids); "
            "/base/mask: must be \"causal\" or \"none\"");
}

TEST(SweepSpec, MeasureSettingsHaveLowerBounds) {
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"cf": 2}],
                    "measure": {"steps": 0, "warmup": -1, "repeats": 1.5, "speed_probe": 1})"),
            "spec.json: /measure/repeats: must be an integer >= 1; /measure/speed_probe: must be true or false; "
            "/measure/steps: must be an integer >= 1; /measure/warmup: must be an integer >= 0");
  const SweepSpec unprobed =
      parse_sweep_spec("{" + header() + R"(, "grids": [{"cf": 2}], "measure": {"speed_probe": false}})", "spec.json");
  EXPECT_FALSE(unprobed.measure->speed_probe);
}

TEST(SweepSpec, ReMeasuringHasBounds) {
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"cf": 2}], "measure": {"repeats": 5, "max_runs": 3, "max_spread": 0})"),
            "spec.json: /measure/max_spread: must be a number > 0 (a fraction of the median run); "
            "/measure/max_runs: must be at least repeats (5)");
  const SweepSpec defaults = parse_sweep_spec("{" + header() + R"(, "grids": [{"cf": 2}], "measure": {"repeats": 3}})", "spec.json");
  EXPECT_EQ(defaults.measure->run_limit(), 6);
  EXPECT_DOUBLE_EQ(defaults.measure->max_spread, 0.5);
  const SweepSpec set = parse_sweep_spec(
      "{" + header() + R"(, "grids": [{"cf": 2}], "measure": {"repeats": 3, "max_runs": 4, "max_spread": 0.25}})", "spec.json");
  EXPECT_EQ(set.measure->run_limit(), 4);
  EXPECT_DOUBLE_EQ(set.measure->max_spread, 0.25);
}

TEST(SweepSpec, CalibrateIsABooleanAndItsArgumentsStrings) {
  EXPECT_EQ(error_of(header() + R"(, "calibrate": "yes", "calibrate_args": ["--no-network", 3], "grids": [{"cf": 2}])"),
            "spec.json: /calibrate: must be true or false; /calibrate_args/1: must be a string");
}

TEST(SweepSpec, EmptyAxisListAndEmptyGrid) {
  EXPECT_EQ(error_of(header() + R"(, "grids": [{"ranks": []}, {}])"),
            "spec.json: /grids/0/ranks: must list at least one value; /grids/1: must be a non-empty object of axes");
}

// Rows of measured steps, vTrain's columns in another order and an extra one
// (ignored): the spec's points are the Megatron steps they ran.
const char* steps_csv =
    "params,iteration time (ms),# GPUs,global batch,micro batch,hidden size,attention heads,# layers,"
    "sequence length,tensor parallelism,data parallelism,pipeline parallelism\n"
    "1.3e9,372.16,2,16,8,1024,16,24,1024,1,1,2\n"
    "6.7e9,219.73,8,32,4,1024,16,24,1024,2,2,2\n";

std::string write_steps(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  write_text_file(path, text);
  return path;
}

TEST(SweepSpec, PointsFromACsvAreTheStepsItsRowsRan) {
  const std::string csv = write_steps("spec-steps.csv", steps_csv);
  const SweepSpec spec = parse_sweep_spec("{" + header() + R"(, "base": {"platform": "a100-cluster"},
    "points_from": {"csv": ")" + csv + R"("}, "profile": "fitted.json"})", "/specs/spec.json");
  ASSERT_EQ(spec.points.size(), 2u);
  ASSERT_EQ(spec.recorded_time_s.size(), 2u);
  EXPECT_DOUBLE_EQ(spec.recorded_time_s[1], 0.21973);
  EXPECT_EQ(spec.profile, "/specs/fitted.json");  // relative to the spec's folder
  const PointConfig& row = spec.points[1];
  EXPECT_EQ(row.kind, "1f1b");
  EXPECT_EQ(row.platform, "a100-cluster");
  EXPECT_EQ(row.tp, 2);
  EXPECT_EQ(row.ranks, 2);
  EXPECT_EQ(row.dp, 2);
  EXPECT_EQ(row.micro_batches, 4);  // 32 samples / (4 a micro-batch x 2 replicas)
  EXPECT_TRUE(row.recompute);
  EXPECT_EQ(row.vocab, 50432);  // 50257 padded to a multiple of 128 x TP
  EXPECT_EQ(row.model.dtype, "fp16");
  EXPECT_EQ(devices(row), 8);
  EXPECT_EQ(row.source, csv + ":3");
  EXPECT_EQ(point_name(row), "line3.a100-cluster");
}

TEST(SweepSpec, ABadRowOfTheCsvIsOneErrorNamingItsLineAndColumn) {
  const std::string csv = write_steps("spec-bad-steps.csv", std::string(steps_csv) + "1,2,8,32,4,1024,16,24,1024,2,2,3\n");
  EXPECT_EQ(error_of(header() + R"(, "points_from": {"csv": ")" + csv + R"("})"),
            "spec.json: /points_from/csv: " + csv +
                ": line 4, # GPUs: tensor x data x pipeline parallelism = 12, not the 8 GPUs");
}

TEST(SweepSpec, PointsFromACsvTakeNoGridsMeasureOrOtherProfile) {
  const std::string csv = write_steps("spec-steps.csv", steps_csv);
  EXPECT_EQ(error_of(header() + R"(, "calibrate": true, "profile": "p.json", "grids": [{"cf": 2}],
                     "measure": {"steps": 2}, "points_from": {"csv": ")" + csv + R"(", "vocab": 0, "rows": 3})"),
            "spec.json: /profile: a sweep that calibrates writes its own profile: drop one of calibrate and profile; "
            "/grids: a sweep takes its points from grids or from points_from, not both; "
            "/measure: points from a CSV are measured already: drop measure; "
            "/points_from/rows: unknown field; /points_from/vocab: must be an integer >= 1");
}

}  // namespace
}  // namespace plait::experiments
