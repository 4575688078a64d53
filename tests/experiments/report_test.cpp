// What a sweep shows a reader: the serial step and the speedup's error in
// results.csv, the summary and report.md; speedup plots drawn as one line
// per family of points that differ along the plot's axis only.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <tuple>

#include "detail/report.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

// A measured point: step and serial times, predicted and measured, with and
// without the speed probe.
PointResult measured_point(int layers, int ranks, double serial_error, double speedup_error,
                           double speedup_error_at_calibration) {
  PointResult r;
  r.config.layers = layers;
  r.config.ranks = ranks;
  r.measured_time_s = 0.1 * layers / 16, r.predicted_time_s = *r.measured_time_s * 1.01;
  r.relative_error = 0.01;
  r.predicted_at_calibration_s = *r.predicted_time_s, r.speed_factor = 1.0;
  r.measured_serial_s = 0.12 * layers / 16, r.predicted_serial_s = *r.measured_serial_s * (1 + serial_error);
  r.measured_speedup = 1.2, r.predicted_speedup = 1.2 * (1 + speedup_error);
  r.speedup_error = speedup_error;
  r.predicted_speedup_at_calibration = 1.2 * (1 + speedup_error_at_calibration);
  r.status = "ok";
  return r;
}

TEST(SweepSummary, SpeedupErrorWithAndWithoutTheProbeAndTheSerialStepsError) {
  const std::vector<PointResult> rows = {measured_point(16, 1, -0.02, 0.01, 0.04),
                                         measured_point(32, 1, 0.05, -0.03, -0.10),
                                         measured_point(64, 2, -0.08, 0.12, 0.20)};
  const SweepSummary summary = summarize_results(rows);
  EXPECT_DOUBLE_EQ(*summary.median_abs_speedup_error, 0.03);
  EXPECT_DOUBLE_EQ(*summary.max_abs_speedup_error, 0.12);
  EXPECT_NEAR(*summary.median_abs_speedup_error_at_calibration, 0.10, 1e-12);
  EXPECT_NEAR(*summary.max_abs_speedup_error_at_calibration, 0.20, 1e-12);
  EXPECT_NEAR(*summary.median_serial_error, -0.02, 1e-12);
  EXPECT_NEAR(*summary.min_serial_error, -0.08, 1e-12);
  EXPECT_NEAR(*summary.max_serial_error, 0.05, 1e-12);
}

TEST(SweepSummary, WithoutAProbeTheSpeedupAtTheCalibrationIsThePredictedOne) {
  PointResult r = measured_point(16, 2, 0, 0.07, 0);
  r.predicted_speedup_at_calibration.reset();
  const SweepSummary summary = summarize_results({r});
  EXPECT_NEAR(*summary.median_abs_speedup_error_at_calibration, 0.07, 1e-12);
}

TEST(ResultsCsv, CarriesTheSerialStepAndTheSpeedupError) {
  const PointResult row = measured_point(32, 2, -0.05, 0.04, 0.09);
  const std::string csv = dump_results_csv({row});
  const auto parsed = parse_results_csv(csv, "r.csv");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_NEAR(*parsed[0].measured_serial_s, *row.measured_serial_s, 1e-6);
  EXPECT_NEAR(*parsed[0].predicted_serial_s, *row.predicted_serial_s, 1e-6);
  EXPECT_NEAR(*parsed[0].speedup_error, 0.04, 1e-6);
  EXPECT_NEAR(*parsed[0].predicted_speedup_at_calibration, 1.2 * 1.09, 1e-6);
}

TEST(ResultsCsv, CarriesTheKindMicroBatchesDataParallelismAndMemory) {
  PointResult row = measured_point(32, 2, 0, 0, 0);
  row.config.kind = "1f1b";
  row.config.micro_batches = 4;
  row.config.dp = 2;
  row.config.virtual_stages = 2;
  row.config.dp_overlap = true;
  row.config.frozen = 8;
  row.config.repack = true;
  row.predicted_memory_bytes = 123456000;  // six significant digits, as written
  const auto parsed = parse_results_csv(dump_results_csv({row}), "r.csv");
  EXPECT_EQ(parsed[0].config, row.config);
  EXPECT_EQ(parsed[0].predicted_memory_bytes, 123456000);
}

TEST(ResultsCsv, AFileWithoutTheSerialColumnsStillResumes) {
  const std::string old_csv =
      "layers,levels,cf,relax,fwd_iters,bwd_iters,ranks,d_model,heads,seq,batch,mask,platform,"
      "predicted_time_s,measured_time_s,measured_min_s,measured_max_s,predicted_speedup,measured_speedup,"
      "relative_error,predicted_at_calibration_s,speed_factor,status,error\n"
      "16,2,4,F,2,1,2,64,2,32,2,causal,local,0.05,0.052,0.05,0.06,0.9,0.95,-0.038,0.048,1.04,ok,\n";
  const auto parsed = parse_results_csv(old_csv, "old.csv");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].config.layers, 16);
  EXPECT_EQ(parsed[0].config.kind, "mgrit");
  EXPECT_EQ(parsed[0].config.micro_batches, 1);
  EXPECT_EQ(*parsed[0].measured_time_s, 0.052);
  EXPECT_FALSE(parsed[0].measured_serial_s.has_value());
  EXPECT_EQ(parsed[0].status, "ok");
}

TEST(ResultsCsv, AMissingColumnIsNamed) {
  try {
    parse_results_csv("layers,levels\n16,2\n", "r.csv");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("r.csv:1: header has no column \"cf\""), std::string::npos)
        << error.what();
  }
}

TEST(Report, GivesTheSpeedupErrorNextToTheStepTimesAndTheSerialColumns) {
  SweepSpec spec;
  spec.name = "t";
  spec.measure = MeasureSpec{};
  const std::vector<PointResult> rows = {measured_point(16, 1, -0.02, 0.01, 0.04),
                                         measured_point(32, 2, 0.05, -0.03, -0.10)};
  const std::string report = detail::format_report(spec, rows, summarize_results(rows), {}, "profile.json");
  EXPECT_NE(report.find("| **speedup**, with the speed probe | 2.0 % | 3.0 % |"), std::string::npos) << report;
  EXPECT_NE(report.find("| speedup at the calibration's speed (no probe) | 7.0 % | 10.0 % |"), std::string::npos)
      << report;
  EXPECT_NE(report.find("| step time, with the speed probe | 1.0 % | 1.0 % |"), std::string::npos) << report;
  EXPECT_NE(report.find("The serial step (the speedup's numerator), predicted / measured - 1: median +1.5 %"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("| serial predicted s | serial measured s |"), std::string::npos) << report;
  EXPECT_NE(report.find("| -3.0 % |"), std::string::npos) << report;  // the second point's speedup error
}

class PlotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory a test: ctest runs the tests of this fixture in parallel processes.
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("plots-test-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  std::string data(const std::string& name) const { return read_text_file((dir_ / "plots" / name).string()); }
  fs::path dir_;
};

TEST_F(PlotsTest, SpeedupLinesFollowFamiliesThatDifferAlongTheAxisOnly) {
  // Two families along depth (1 and 2 ranks), a lone point at another cf
  // (a family of one along depth: no line), and a cf family of two.
  std::vector<PointResult> rows;
  for (int ranks : {1, 2})
    for (int layers : {16, 32, 64}) rows.push_back(measured_point(layers, ranks, 0, 0, 0));
  PointResult other_cf = measured_point(32, 2, 0, 0, 0);
  other_cf.config.cf = 4;
  rows.push_back(other_cf);
  const auto drawn = detail::write_plots(dir_.string(), rows);

  const std::string layers = data("speedup_vs_layers.dat");
  // Labelled by what tells the families apart: cf2 is common to both.
  EXPECT_NE(layers.find("# P1\n# layers predicted_speedup measured_speedup\n16 "), std::string::npos) << layers;
  EXPECT_NE(layers.find("# P2\n"), std::string::npos) << layers;
  EXPECT_EQ(layers.find("cf4"), std::string::npos) << layers;
  const std::string cf = data("speedup_vs_cf.dat");
  // A lone family: labelled by the settings that vary in the sweep.
  EXPECT_NE(cf.find("# N32 P2\n# cf predicted_speedup measured_speedup\n2 "), std::string::npos) << cf;
  // The script draws predicted and measured of a family in one colour, labelled by the family.
  const std::string script = data("speedup_vs_layers.gp");
  EXPECT_NE(script.find("index 1 using 1:2 with linespoints dt 2 pt 6 lc 2 notitle"), std::string::npos) << script;
  EXPECT_NE(script.find("index 1 using 1:3 with linespoints dt 1 pt 7 lc 2 title 'P2'"), std::string::npos)
      << script;
  EXPECT_FALSE(fs::exists(dir_ / "plots" / "speedup_vs_levels.gp"));  // one level in the sweep: no plot
  EXPECT_TRUE(fs::exists(dir_ / "plots" / "speedup_predicted_vs_measured.gp"));
  // gnuplot draws them (scripts/bootstrap.sh installs it).
  for (const char* png : {"plots/speedup_vs_layers.png", "plots/speedup_vs_cf.png",
                          "plots/speedup_predicted_vs_measured.png", "plots/predicted_vs_measured.png"})
    EXPECT_NE(std::find(drawn.begin(), drawn.end(), png), drawn.end()) << png;
}

TEST_F(PlotsTest, KindsAgainstDevicesTakeEachFamilysFastestSplit) {
  // MGRIT and 1F1B on 1, 2 and 4 devices; at 4 devices two splits each (4 x 1 and 2 x 2).
  std::vector<PointResult> rows;
  for (const std::string kind : {"mgrit", "1f1b"})
    for (const auto& [ranks, dp, seconds] : {std::tuple{1, 1, 1.0}, {2, 1, 0.6}, {4, 1, 0.5}, {2, 2, 0.4}}) {
      PointResult r = measured_point(32, ranks, 0, 0, 0);
      r.config.kind = kind;
      r.config.micro_batches = kind == "1f1b" ? 4 : 1;
      r.config.dp = dp;
      r.predicted_time_s = seconds * (kind == "1f1b" ? 2 : 1);
      r.measured_time_s.reset();
      r.predicted_memory_bytes = 1048576.0 * 64 / ranks;
      rows.push_back(r);
    }
  detail::write_plots(dir_.string(), rows);
  const std::string devices = data("time_vs_devices.dat");
  EXPECT_NE(devices.find("# mgrit\n# devices predicted_s measured_s predicted_memory_mib\n1 1 ? 64\n2 0.6 ? 32\n4 0.4 ? 32\n"),
            std::string::npos) << devices;
  EXPECT_NE(devices.find("# 1f1b M4\n"), std::string::npos) << devices;
  EXPECT_TRUE(fs::exists(dir_ / "plots" / "memory_vs_devices.gp"));
  const std::string table = detail::devices_table(rows);
  EXPECT_NE(table.find("| mgrit | 4 | 2 x 2 | 0.4 | ? | 32.0 MiB |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 1f1b M4 | 4 | 2 x 2 | 0.8 | ? | 32.0 MiB |"), std::string::npos) << table;
  // At 4 devices the data-parallel degree varies: time against dp, one line per kind.
  const std::string dp = data("time_vs_dp.dat");
  EXPECT_NE(dp.find("# mgrit\n# dp predicted_s measured_s predicted_memory_mib\n1 0.5 ? 16\n2 0.4 ? 32\n"),
            std::string::npos) << dp;
}

TEST(Report, SaysWhereTheTimeAgainstDataParallelismIsLowest) {
  // Two device budgets, every split: 8 devices U-shaped (fastest at 2 x 4), 4 monotone.
  std::vector<PointResult> rows;
  for (const auto& [devices, dp, seconds] : {std::tuple{8, 1, 3.0}, {8, 2, 1.5}, {8, 4, 1.0}, {8, 8, 1.2},
                                             {4, 1, 2.0}, {4, 2, 1.5}, {4, 4, 1.0}}) {
    PointResult r = measured_point(32, devices / dp, 0, 0, 0);
    r.config.dp = dp;
    r.config.model.batch = devices;
    r.predicted_time_s = seconds;
    rows.push_back(r);
  }
  const std::string table = detail::data_parallel_table(rows);
  EXPECT_NE(table.find("| 8 devices d64 h2 s32 b8 | 8 x 1, 3 | 2 x 4, 1 | 1 x 8, 1.2 | U-shaped: the minimum inside |"),
            std::string::npos) << table;
  EXPECT_NE(table.find("| 4 devices d64 h2 s32 b4 | 4 x 1, 2 | 1 x 4, 1 | 1 x 4, 1 | monotone: the most replicas fastest |"),
            std::string::npos) << table;
  EXPECT_EQ(detail::data_parallel_table({rows.front()}), "");  // no family of two splits
}

TEST_F(PlotsTest, TimeAgainstFrozenBlocksHasALinePerRepack) {
  std::vector<PointResult> rows;
  for (const bool repack : {false, true})
    for (const auto& [frozen, seconds] : {std::pair{0, 1.0}, {8, 0.8}, {12, 0.6}}) {
      PointResult r = measured_point(16, 4, 0, 0, 0);
      r.config.kind = "1f1b";
      r.config.frozen = frozen;
      r.config.repack = repack;
      if (repack && frozen == 12) {
        r.config.ranks = 2;
        r.config.dp = 2;
      }
      r.predicted_time_s = seconds * (repack && frozen == 12 ? 0.5 : 1);
      r.measured_time_s.reset();
      rows.push_back(r);
    }
  detail::write_plots(dir_.string(), rows);
  const std::string frozen = data("time_vs_frozen.dat");
  EXPECT_NE(frozen.find("# stages kept\n# frozen predicted_s measured_s predicted_memory_mib\n0 1 ? ?\n8 0.8 ? ?\n12 0.6 ? ?\n"),
            std::string::npos) << frozen;
  EXPECT_NE(frozen.find("# repacked\n# frozen predicted_s measured_s predicted_memory_mib\n0 1 ? ?\n8 0.8 ? ?\n12 0.3 ? ?\n"),
            std::string::npos) << frozen;
}

TEST_F(PlotsTest, KindsAgainstDevicesGetAPlotPerDepth) {
  std::vector<PointResult> rows;
  for (const int layers : {32, 64})
    for (const std::string kind : {"mgrit", "1f1b"})
      for (const int ranks : {1, 2}) {
        PointResult r = measured_point(layers, ranks, 0, 0, 0);
        r.config.kind = kind;
        rows.push_back(r);
      }
  detail::write_plots(dir_.string(), rows);
  EXPECT_FALSE(fs::exists(dir_ / "plots" / "time_vs_devices.dat"));
  const std::string first = data("time_vs_devices_1.dat"), second = data("time_vs_devices_2.dat");
  EXPECT_NE(first.find("# mgrit\n"), std::string::npos) << first;  // one line per kind, labelled by it
  EXPECT_NE(first.find("# 1f1b M1\n"), std::string::npos) << first;
  EXPECT_NE(data("time_vs_devices_2.gp").find("Time per step vs devices (fastest split), N64"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "plots" / "memory_vs_devices_2.gp"));
}

}  // namespace
}  // namespace plait::experiments
