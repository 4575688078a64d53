// Sweeps whose points are rows of measured steps (points_from), with the real
// plait binary: a cluster spec runs unchanged whatever its rows' node counts;
// calibrate fits the kernel model on the rows with a held-out check; a row's
// point is the very Program calibrate --from-steps fits.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <cmath>

#include <nlohmann/json.hpp>

#include "detail/points.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/program.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

const std::string source_dir = PLAIT_SOURCE_DIR;

// Rows as a multi-node measurement would have them (the times are made up:
// this checks that the rows run, not how well): 8, 16, 64 and 256 A100s.
const char* cluster_steps =
    "# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,"
    "tensor parallelism,data parallelism,pipeline parallelism,iteration time (ms)\n"
    "8,32,4,1024,16,24,1024,2,2,2,220.0\n"
    "16,64,2,2048,16,24,1024,4,2,2,500.0\n"
    "64,128,1,4096,32,32,2048,8,4,2,3000.0\n"
    "256,512,1,4096,32,32,2048,8,8,4,6000.0\n";

class StepSweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("step-sweep-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A spec of the CSV's rows on `platform`, priced by `pricing` (a "profile" or "calibrate" field).
  SweepSummary sweep(const std::string& name, const std::string& csv, const std::string& platform,
                     const std::string& pricing) const {
    const std::string spec = (dir_ / (name + ".json")).string();
    write_text_file(spec, R"({"format": "plait.sweep", "version": 1, "name": ")" + name + R"(", )" + pricing +
                              R"(, "base": {"platform": ")" + platform + R"("}, "points_from": {"csv": ")" + csv + R"("}})");
    SweepOptions options;
    options.spec_path = spec;
    options.output_dir = (dir_ / name).string();
    options.plait_binary = PLAIT_BINARY;
    options.jobs = 2;
    return run_sweep(options);
  }
  std::vector<PointResult> rows(const std::string& name) const {
    const std::string path = (dir_ / name / "results.csv").string();
    return parse_results_csv(read_text_file(path), path);
  }
  fs::path dir_;
};

TEST_F(StepSweepTest, AClusterSpecRunsUnchangedWhateverItsRowsNodeCounts) {
  const std::string csv = (dir_ / "cluster.csv").string();
  write_text_file(csv, cluster_steps);
  const std::string profile = R"("profile": ")" + source_dir + R"(/docs/gpu/a100-node-fitted.json")";
  const SweepSummary cluster = sweep("cluster", csv, "a100-cluster", profile);
  EXPECT_EQ(cluster.points, 4);
  EXPECT_EQ(cluster.failed, 0);
  const std::vector<PointResult> results = rows("cluster");
  ASSERT_EQ(results.size(), 4u);
  const double measured[] = {0.22, 0.5, 3.0, 6.0};
  for (std::size_t i = 0; i < results.size(); ++i) {
    const PointResult& r = results[i];
    EXPECT_EQ(r.status, "ok") << r.error;
    EXPECT_EQ(r.config.source, csv + ":" + std::to_string(i + 2));
    ASSERT_TRUE(r.measured_time_s && r.predicted_time_s && r.relative_error && r.critical_compute_s) << i;
    EXPECT_DOUBLE_EQ(*r.measured_time_s, measured[i]);
    EXPECT_GT(*r.predicted_time_s, 0);
    EXPECT_GT(*r.critical_compute_s, 0);
    EXPECT_LE(*r.critical_compute_s, *r.predicted_time_s * 1.0001);
    EXPECT_FALSE(r.measured_min_s.has_value());  // one recorded time: no spread to claim
  }
  EXPECT_EQ(devices(results[3].config), 256);  // 32 nodes: the 16-node cluster grew to hold it

  // One node holds the 8-GPU row alone, priced as on a node of the cluster; the others are refused by name.
  sweep("node", csv, "a100-node", profile);
  const std::vector<PointResult> node = rows("node");
  ASSERT_EQ(node.size(), 4u);
  ASSERT_EQ(node[0].status, "ok") << node[0].error;
  EXPECT_NEAR(*node[0].predicted_time_s / *results[0].predicted_time_s, 1.0, 0.01);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(node[i].status, "predict_failed");
    EXPECT_NE(node[i].error.find("the platform has 8 devices"), std::string::npos) << node[i].error;
  }

  const std::string report = read_text_file((dir_ / "cluster" / "report.md").string());
  EXPECT_NE(report.find("## Measured steps from `" + csv + "`"), std::string::npos);
  EXPECT_NE(report.find("| TP 8 | 2 |"), std::string::npos) << report;
  EXPECT_NE(report.find("| hidden 4096 | 2 |"), std::string::npos);
  EXPECT_NE(report.find("### Worst rows, and why"), std::string::npos);
  EXPECT_NE(report.find("of the predicted critical path"), std::string::npos);
  EXPECT_EQ(report.find("## Points"), std::string::npos);  // the rows have their own table
}

TEST_F(StepSweepTest, CalibrateFitsTheKernelModelOnTheRowsWithAHeldOutCheck) {
  const std::string csv = source_dir + "/tests/costmodels/data/vtrain_steps_sample.csv";
  const SweepSummary summary = sweep("fit", csv, "a100-node", R"("calibrate": true)");
  EXPECT_EQ(summary.points, 48);
  EXPECT_EQ(summary.failed, 0);
  EXPECT_TRUE(fs::exists(dir_ / "fit" / "fit.md"));
  for (const PointResult& r : rows("fit")) {
    ASSERT_TRUE(r.held_out_s.has_value()) << r.config.source;
    EXPECT_GT(*r.held_out_s, 0);
  }
  // The model describes these A100 steps: a broken fit or pricing would miss by far more.
  ASSERT_TRUE(summary.mean_abs_held_out_error && summary.mean_abs_error);
  EXPECT_LT(*summary.mean_abs_held_out_error, 0.2);
  EXPECT_LT(*summary.mean_abs_error, 0.2);
  const std::string report = read_text_file((dir_ / "fit" / "report.md").string());
  EXPECT_NE(report.find("held-out mean abs"), std::string::npos);
  EXPECT_NE(report.find("plait calibrate --from-steps"), std::string::npos);
}

// experiments/a100-cluster.json does not refit: pointed at the same rows in
// another order, every row gets the same prediction, hence the same error.
TEST_F(StepSweepTest, TheShippedClusterSpecGivesTheSameErrorsOnItsRowsShuffled) {
  const std::string csv = source_dir + "/../shared/data/vtrain-a100/cluster_steps_64_256_gpus.csv";
  std::vector<std::string> lines;
  {
    std::istringstream in(read_text_file(csv));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 42u) << csv;
  std::vector<std::string> shuffled(lines.begin() + 1, lines.end());
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  std::string text = lines.front() + "\n";
  for (const std::string& line : shuffled) text += line + "\n";
  const std::string shuffled_csv = (dir_ / "shuffled.csv").string();
  write_text_file(shuffled_csv, text);

  nlohmann::json spec = nlohmann::json::parse(read_text_file(source_dir + "/experiments/a100-cluster.json"));
  spec["profile"] = source_dir + "/docs/gpu/a100-cluster-fitted.json";
  // Each row's error by its text: `file_lines` are the file's lines, the header first.
  const auto errors_by_row = [&](const std::string& name, const std::string& file,
                                 const std::vector<std::string>& file_lines) {
    spec["name"] = name;
    spec["points_from"]["csv"] = file;
    const std::string path = (dir_ / (name + ".json")).string();
    write_text_file(path, spec.dump());
    SweepOptions options;
    options.spec_path = path;
    options.output_dir = (dir_ / name).string();
    options.plait_binary = PLAIT_BINARY;
    options.jobs = 2;
    const SweepSummary summary = run_sweep(options);
    EXPECT_EQ(summary.points, 41);
    EXPECT_EQ(summary.failed, 0);
    EXPECT_TRUE(summary.mean_abs_error && *summary.mean_abs_error < 0.1);  // docs/gpu/a100-cluster-fit.md: 7.8 %
    std::map<std::string, double> errors;
    for (const PointResult& r : rows(name)) {
      EXPECT_TRUE(r.relative_error) << r.config.source << " " << r.error;
      const int line = std::stoi(r.config.source.substr(r.config.source.rfind(':') + 1));
      errors[file_lines.at(std::size_t(line - 1))] = r.relative_error.value_or(NAN);
    }
    return errors;
  };
  std::vector<std::string> shuffled_lines = {lines.front()};
  shuffled_lines.insert(shuffled_lines.end(), shuffled.begin(), shuffled.end());
  const std::map<std::string, double> in_order = errors_by_row("in-order", csv, lines);
  const std::map<std::string, double> reordered = errors_by_row("shuffled", shuffled_csv, shuffled_lines);
  ASSERT_EQ(in_order.size(), 41u);
  ASSERT_EQ(reordered.size(), 41u);
  for (const auto& [row, error] : in_order) {
    ASSERT_TRUE(reordered.count(row)) << row;
    EXPECT_NEAR(reordered.at(row), error, 1e-9) << row;
  }
}

TEST(StepPoints, ARowsPointIsTheProgramTheFitPrices) {
  const std::string csv = source_dir + "/tests/costmodels/data/vtrain_steps_sample.csv";
  const auto points = detail::step_points(csv, 50257, PointConfig{});
  const auto steps = costmodels::load_step_csv(csv);
  ASSERT_EQ(points.size(), steps.size());
  for (std::size_t i = 0; i < steps.size(); i += 7) {
    const schedule::Program fitted =
        schedule::build_kind(costmodels::megatron_step_kind, costmodels::megatron_step_spec(steps[i]));
    EXPECT_EQ(schedule::dump_program(detail::build_point_program(points[i].first)), schedule::dump_program(fitted))
        << steps[i].line;
    EXPECT_DOUBLE_EQ(points[i].second, steps[i].seconds);
  }
}

}  // namespace
}  // namespace plait::experiments
