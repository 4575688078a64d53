// The sweep driver with the real plait binary, prediction only (fast): a
// failing point is a row and the sweep goes on; an interrupted sweep resumes
// without rerunning its points; another spec's results are not overwritten.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "detail/points.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

// Three good points on 2-rank h100x32, one that cannot be built (more ranks
// than layers), one on a platform that does not exist.
const char* spec_text = R"({"format": "plait.sweep", "version": 1, "name": "rows",
  "base": {"levels": 2, "cf": 2, "ranks": 2, "platform": "h100x32",
           "model": {"d_model": 64, "heads": 2, "seq": 16, "batch": 1}},
  "grids": [{"layers": [8, 16, 32]}, {"layers": 4, "ranks": 8}, {"layers": 8, "platform": "no-such-platform"}]})";

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("sweep-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_text_file((dir_ / "spec.json").string(), spec_text);
  }
  SweepOptions options(const std::string& spec = "spec.json") const {
    SweepOptions o;
    o.spec_path = (dir_ / spec).string();
    o.output_dir = (dir_ / "out").string();
    o.plait_binary = PLAIT_BINARY;
    o.jobs = 2;
    return o;
  }
  // A stand-in plait: `plait simulate` prints fixed figures, `plait run` runs
  // `run_case` (sh, the case branch's body); a spec of two points (8 and 16
  // layers) measured in 3 runs of `steps` steps; the options that use both.
  SweepOptions stand_in(const std::string& run_case, int steps) const {
    const fs::path fake = dir_ / "fake-plait";
    write_text_file(fake.string(), "#!/bin/sh\n"
                                   "case \"$1\" in\n"
                                   "  simulate) echo '{\"predicted_time_s\": 0.5, \"serial_predicted_time_s\": 1.0, \"speedup\": 2.0}';;\n"
                                   "  run) " + run_case + ";;\n"
                                   "esac\n");
    fs::permissions(fake, fs::perms::owner_all);
    write_text_file((dir_ / "measured.json").string(), R"({"format": "plait.sweep", "version": 1, "name": "measured",
      "base": {"levels": 2, "cf": 2, "ranks": 1, "platform": "h100x32", "model": {"d_model": 64, "heads": 2, "seq": 16, "batch": 1}},
      "grids": [{"layers": [8, 16]}], "measure": {"steps": )" + std::to_string(steps) + R"(, "warmup": 0, "repeats": 3}})");
    SweepOptions measured = options("measured.json");
    measured.plait_binary = fake.string();
    measured.cores = 1;
    return measured;
  }
  // The points whose runs the stand-in logged to `log`, in order.
  static std::vector<std::string> logged_points(const fs::path& log) {
    std::vector<std::string> points;
    std::istringstream lines(read_text_file(log.string()));
    for (std::string line; std::getline(lines, line);) points.push_back(fs::path(line).parent_path().filename().string());
    return points;
  }
  std::vector<PointResult> rows() const {
    const std::string path = (dir_ / "out" / "results.csv").string();
    return parse_results_csv(read_text_file(path), path);
  }
  fs::path dir_;
};

TEST_F(SweepTest, FailingPointsAreRowsAndTheSweepGoesOn) {
  const SweepSummary summary = run_sweep(options());
  EXPECT_EQ(summary.points, 5);
  EXPECT_EQ(summary.failed, 2);
  const auto results = rows();
  ASSERT_EQ(results.size(), 5u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].status, "predicted") << results[i].error;
    ASSERT_TRUE(results[i].predicted_time_s.has_value());
    EXPECT_GT(*results[i].predicted_time_s, 0);
    EXPECT_FALSE(results[i].measured_time_s.has_value());
  }
  EXPECT_EQ(results[3].status, "build_failed");
  EXPECT_NE(results[3].error.find("rank"), std::string::npos) << results[3].error;
  EXPECT_EQ(results[4].status, "predict_failed");
  EXPECT_NE(results[4].error.find("no-such-platform"), std::string::npos) << results[4].error;
  const std::string report = read_text_file((dir_ / "out" / "report.md").string());
  EXPECT_NE(report.find("build_failed"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "plots" / "speedup_vs_layers.png"));
}

TEST_F(SweepTest, InterruptedSweepResumesWithoutRerunningDonePoints) {
  run_sweep(options());
  // An interruption after two points: the file holds only their rows. A
  // marker value shows whether a kept row is recomputed.
  auto results = rows();
  results.resize(2);
  results[0].predicted_time_s = 12345.0;
  write_text_file((dir_ / "out" / "results.csv").string(), dump_results_csv(results));
  const SweepSummary summary = run_sweep(options());
  EXPECT_EQ(summary.resumed, 2);
  const auto resumed = rows();
  ASSERT_EQ(resumed.size(), 5u);
  EXPECT_EQ(*resumed[0].predicted_time_s, 12345.0);
  ASSERT_TRUE(resumed[2].predicted_time_s.has_value());
  EXPECT_LT(*resumed[2].predicted_time_s, 12345.0);
  EXPECT_EQ(resumed[4].status, "predict_failed");
}

// Measured points are run in rounds (run r of every point, then run r + 1),
// and a resumed sweep keeps the runs that finished. A stand-in plait logs
// which Program each `plait run` ran and prints fixed times.
TEST_F(SweepTest, MeasuresInRoundsAndResumesAtTheRun) {
  const fs::path log = dir_ / "runs.log";
  const SweepOptions measured =
      stand_in("for a; do case \"$a\" in */program.json) echo \"$a\" >> " + log.string() + ";; esac; done\n"
               "       echo '{\"time_per_step_s\": 0.25, \"serial_time_per_step_s\": 0.75}'", 1);
  const auto runs_since_last_call = [&] {
    const std::vector<std::string> points = logged_points(log);
    fs::remove(log);
    return points;
  };
  const std::string a = "N8.L2.cf2.F.it2-1.P1.d64h2s16b1.causal.h100x32", b = "N16.L2.cf2.F.it2-1.P1.d64h2s16b1.causal.h100x32";
  const SweepSummary steady = run_sweep(measured);
  EXPECT_EQ(steady.measured, 2);
  EXPECT_EQ(steady.extra_runs, 0);  // steady runs: no round more than the spec's
  EXPECT_EQ(runs_since_last_call(), (std::vector<std::string>{a, b, a, b, a, b}));
  for (const PointResult& row : rows()) {
    EXPECT_EQ(row.status, "ok") << row.error;
    EXPECT_DOUBLE_EQ(*row.measured_time_s, 0.25);
    EXPECT_DOUBLE_EQ(*row.measured_speedup, 3.0);
  }

  // Interrupted in the second round: b's run 2 never ran, a's run 2 was cut off
  // mid-write, the results file has no row yet. Only those two runs run again.
  write_text_file((dir_ / "out" / "results.csv").string(), dump_results_csv({}));
  fs::remove(dir_ / "out" / "points" / b / "measured-1.json");
  write_text_file((dir_ / "out" / "points" / a / "measured-1.json").string(), "{\"time_per");
  EXPECT_EQ(run_sweep(measured).measured, 2);
  EXPECT_EQ(runs_since_last_call(), (std::vector<std::string>{a, b}));
  for (const PointResult& row : rows()) EXPECT_DOUBLE_EQ(*row.measured_time_s, 0.25);
}

// A run that met other work does not count: point a's first run has a step
// far off the others and gets one run more; every run of point b shares the
// machine with another process, so b is measured up to the limit (6 runs),
// flagged unsteady and left out of the headline error.
TEST_F(SweepTest, DisturbedRunsAreMeasuredAgainAndUnsteadyPointsFlagged) {
  const fs::path log = dir_ / "runs.log";
  const SweepOptions measured = stand_in(
      "for a; do case \"$a\" in */program.json) p=\"$a\";; esac; done\n"
      "       echo \"$p\" >> " + log.string() + "\n"
      "       d=$(dirname \"$p\"); n=$(cat \"$d/count\" 2>/dev/null || echo 0); echo $((n + 1)) > \"$d/count\"\n"
      "       case \"$d\" in\n"
      "         */N8.*) if [ \"$n\" = 0 ]; then\n"
      "                   echo '{\"time_per_step_s\": 0.5, \"serial_time_per_step_s\": 0.75, \"step_times_s\": [0.25, 0.75]}'\n"
      "                 else\n"
      "                   echo '{\"time_per_step_s\": 0.25, \"serial_time_per_step_s\": 0.75, \"step_times_s\": [0.25, 0.25]}'\n"
      "                 fi;;\n"
      "         *) echo '{\"time_per_step_s\": 0.4, \"serial_time_per_step_s\": 0.75,"
      " \"host_load\": {\"steps\": {\"wall_s\": 1.0, \"foreign_cpu_s\": 0.9}}}';;\n"
      "       esac",
      2);
  const SweepSummary summary = run_sweep(measured);

  const std::string a = "N8.L2.cf2.F.it2-1.P1.d64h2s16b1.causal.h100x32", b = "N16.L2.cf2.F.it2-1.P1.d64h2s16b1.causal.h100x32";
  EXPECT_EQ(logged_points(log), (std::vector<std::string>{a, b, a, b, a, b, a, b, b, b}));

  const auto results = rows();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, "ok") << results[0].error;
  EXPECT_DOUBLE_EQ(*results[0].measured_time_s, 0.25);  // the disturbed 0.5 s run left out
  EXPECT_EQ(*results[0].runs, 4);
  EXPECT_EQ(*results[0].disturbed_runs, 1);
  const auto first_run = nlohmann::json::parse(read_text_file((dir_ / "out" / "points" / a / "measured-0.json").string()));
  EXPECT_EQ(first_run.at("steadiness").at("steady"), false);
  EXPECT_EQ(first_run.at("steadiness").at("reasons").at(0), "step 2 took 3.00x the fastest (0.75 s against 0.25 s)");

  EXPECT_EQ(results[1].status, "unsteady");
  EXPECT_EQ(results[1].error, "6 of 6 runs disturbed: other processes took 0.90 cores during the steps "
                              "(0.90 s of CPU time in 1.00 s, /proc/stat)");
  EXPECT_EQ(*results[1].runs, 6);
  EXPECT_DOUBLE_EQ(*results[1].measured_time_s, 0.4);  // still reported, from every run

  EXPECT_EQ(summary.measured, 2);
  EXPECT_EQ(summary.unsteady, 1);
  EXPECT_EQ(summary.failed, 0);
  EXPECT_EQ(summary.runs, 10);
  EXPECT_EQ(summary.extra_runs, 4);
  EXPECT_EQ(summary.disturbed_runs, 7);
  EXPECT_DOUBLE_EQ(*summary.median_abs_error, 1.0);  // a's alone: 0.5 predicted / 0.25 measured
  const std::string report = read_text_file((dir_ / "out" / "report.md").string());
  EXPECT_NE(report.find("1 point(s) never became steady** and are left out of every error figure: `" + b + "`"),
            std::string::npos) << report;
  EXPECT_NE(report.find("abs(error) over 1 measured points (1 unsteady left out)"), std::string::npos) << report;
}

// A calibration beside other work is made again: the stand-in plait's first
// calibration has a busy process outside the sweep's tree beside it for 2 s
// of its 2.5 s; its second is too short to judge (steady).
TEST_F(SweepTest, ACalibrationThatMetOtherWorkIsMadeAgain) {
  const fs::path log = dir_ / "calibrations.log", fake = dir_ / "fake-plait";
  write_text_file(fake.string(),
                  "#!/bin/sh\n"
                  "case \"$1\" in\n"
                  "  simulate) echo '{\"predicted_time_s\": 0.5, \"serial_predicted_time_s\": 1.0, \"speedup\": 2.0}';;\n"
                  "  calibrate) while [ \"$1\" != -o ]; do shift; done\n"
                  "             echo calibrate >> " + log.string() + "\n"
                  "             if [ $(wc -l < " + log.string() + ") = 1 ]; then\n"
                  "               (timeout 2 sh -c 'while :; do :; done' &)\n"
                  "               sleep 2.5\n"
                  "             fi\n"
                  "             echo '{}' > \"$2\";;\n"
                  "esac\n");
  fs::permissions(fake, fs::perms::owner_all);
  write_text_file((dir_ / "calibrated.json").string(), R"({"format": "plait.sweep", "version": 1, "name": "calibrated",
    "calibrate": true, "base": {"levels": 2, "cf": 2, "ranks": 1, "platform": "h100x32",
    "model": {"d_model": 64, "heads": 2, "seq": 16, "batch": 1}}, "grids": [{"layers": 8}]})");
  SweepOptions calibrated = options("calibrated.json");
  calibrated.plait_binary = fake.string();
  const SweepSummary summary = run_sweep(calibrated);
  EXPECT_EQ(summary.calibration_attempts, 2);
  EXPECT_TRUE(summary.calibration_steady);
  EXPECT_EQ(read_text_file(log.string()), "calibrate\ncalibrate\n");
  const auto attempts = nlohmann::json::parse(read_text_file((dir_ / "out" / "calibration-steadiness.json").string()));
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_FALSE(attempts[0].at("steady").get<bool>());
  EXPECT_GT(attempts[0].at("busiest_foreign_cores").get<double>(), 0.25);
  const std::string report = read_text_file((dir_ / "out" / "report.md").string());
  EXPECT_NE(report.find("- calibration steadiness: 2 attempt(s); the last was steady"), std::string::npos) << report;
}

TEST_F(SweepTest, AnotherSpecsResultsNeedForce) {
  run_sweep(options());
  std::string other = spec_text;
  other.replace(other.find("\"rows\""), 6, "\"other\"");
  write_text_file((dir_ / "other.json").string(), other);
  try {
    run_sweep(options("other.json"));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), (dir_ / "out").string() + ": holds the results of another spec (" +
                                             (dir_ / "out" / "spec.json").string() + "); pass --force to replace them");
  }
  SweepOptions forced = options("other.json");
  forced.force = true;
  EXPECT_EQ(run_sweep(forced).resumed, 0);
}

TEST(PairedPrediction, TheErrorIsTheMedianOfTheRunsErrors) {
  // Runs at 1, 2 and 3 s, predicted at their own speeds 10 % over, 10 % under and 10 % over:
  // the median run (2 s) gets the median ratio (1.1), so the point's error is +10 %.
  EXPECT_DOUBLE_EQ(detail::paired_prediction({1, 2, 3}, {1.1, 1.8, 3.3}), 2.2);
  // Runs exact, +10 % and -10 %: the median run error is 0; the median of the
  // predictions over the median time (1.26 / 1.2) would say +5 %.
  EXPECT_DOUBLE_EQ(detail::paired_prediction({1.0, 1.2, 1.4}, {1.0, 1.32, 1.26}), 1.2);
  EXPECT_THROW(detail::paired_prediction({1, 2}, {1}), Error);
  EXPECT_THROW(detail::paired_prediction({}, {}), Error);
}

TEST(ResultsCsv, RoundTripsQuotedErrorsAndEmptyFields) {
  PointResult row;
  row.config.layers = 64;
  row.config.platform = "platforms/a,b.json";
  row.config.tp = 4;
  row.config.vocab = 50432;
  row.config.recompute = true;
  row.config.source = "steps, measured.csv:17";
  row.predicted_time_s = 0.125;
  row.held_out_s = 0.25;
  row.status = "measure_failed";
  row.error = "plait run: exit 3: \"rank 1\" died,\nsee log";
  const auto parsed = parse_results_csv(dump_results_csv({row, row}), "r.csv");
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1].config, row.config);
  EXPECT_EQ(parsed[1].error, row.error);
  EXPECT_EQ(*parsed[1].predicted_time_s, 0.125);
  EXPECT_EQ(*parsed[1].held_out_s, 0.25);
  EXPECT_FALSE(parsed[1].critical_compute_s.has_value());
  EXPECT_FALSE(parsed[1].measured_time_s.has_value());
}

TEST(SweepSummary, ErrorsAtTheMeasuredSpeedAndAtTheCalibrations) {
  // Two points measured while the machine ran 10 % and 30 % slower than at its
  // calibration, priced at that speed; one without a probe; one not measured.
  PointResult slower, slowest, unprobed, predicted;
  slower.measured_time_s = 1.0, slower.predicted_time_s = 1.02, slower.relative_error = 0.02;
  slower.predicted_at_calibration_s = 0.93, slower.speed_factor = 1.1;
  slowest.measured_time_s = 2.0, slowest.predicted_time_s = 1.9, slowest.relative_error = -0.05;
  slowest.predicted_at_calibration_s = 1.5, slowest.speed_factor = 1.3;
  unprobed.measured_time_s = 1.0, unprobed.predicted_time_s = 1.01, unprobed.relative_error = 0.01;
  predicted.predicted_time_s = 3.0, predicted.status = "predicted";
  const SweepSummary summary = summarize_results({slower, slowest, unprobed, predicted});
  EXPECT_EQ(summary.points, 4);
  EXPECT_EQ(summary.measured, 3);
  EXPECT_DOUBLE_EQ(*summary.median_abs_error, 0.02);
  EXPECT_DOUBLE_EQ(*summary.max_abs_error, 0.05);
  EXPECT_DOUBLE_EQ(*summary.median_abs_error_at_calibration, (0.07 + 0.25) / 2);
  EXPECT_DOUBLE_EQ(*summary.max_abs_error_at_calibration, 0.25);
  EXPECT_DOUBLE_EQ(*summary.min_speed_factor, 1.1);
  EXPECT_DOUBLE_EQ(*summary.max_speed_factor, 1.3);
  const auto parsed = parse_results_csv(dump_results_csv({slowest}), "r.csv");
  EXPECT_EQ(*parsed[0].speed_factor, 1.3);
  EXPECT_EQ(*parsed[0].predicted_at_calibration_s, 1.5);
}

TEST(ResultsCsv, HeaderHasTheDocumentedColumns) {
  EXPECT_EQ(results_csv_header(),
            "kind,micro_batches,virtual_stages,dp,dp_overlap,frozen,repack,layers,levels,cf,relax,fwd_iters,bwd_iters,ranks,d_model,heads,seq,batch,mask,platform,"
            "tp,vocab,recompute,fwd_levels,dp_allreduce,ends,buffer_blocks,allreduce,zero,sequence_parallel,source,predicted_time_s,measured_time_s,measured_min_s,measured_max_s,predicted_speedup,measured_speedup,"
            "relative_error,predicted_at_calibration_s,speed_factor,predicted_serial_s,measured_serial_s,"
            "speedup_error,predicted_speedup_at_calibration,predicted_memory_bytes,held_out_s,critical_compute_s,runs,disturbed_runs,status,error");
}

TEST(ResultsCsv, MalformedRowNamesItsLine) {
  try {
    parse_results_csv(results_csv_header() + "\n1,2\n", "r.csv");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "r.csv: row 1: 2 fields, expected 51");
  }
}

}  // namespace
}  // namespace plait::experiments
