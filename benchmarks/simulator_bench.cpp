// plait-simulator-bench: how long the simulator takes, and how that grows with
// the number of ops simulated.
//
// Not a Google Benchmark binary: SimGrid allows one simulation per process, so
// every point runs in a forked child; the parent times it and fits
// seconds = a + b * ops over the points.
//
//   plait-simulator-bench                 the default sweep (includes the 4096-layer, 1024-rank case)
//   plait-simulator-bench --layers 4096 --ranks 1024   one point
//   --json                                rows as JSON
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plait/schedule/build.hpp"
#include "plait/simulator/simulator.hpp"

namespace {

using namespace plait;

struct Point {
  int layers = 4096;
  int ranks = 1024;
  const char* series = "single";
};

struct Row {
  Point point;
  long long ops = 0, messages = 0;
  double build_s = 0, simulate_s = 0, platform_s = 0, predicted_s = 0, speedup = 0;
  bool ok = false;
  char error[256] = {};
};

// 4 levels, cf 4, FCF, 2 forward and 1 adjoint iteration, GPT-2-small width,
// on H100 nodes of 8 (NVLink 4, InfiniBand NDR star), analytic pricing.
Row run_point(const Point& point) {
  Row row;
  row.point = point;
  const auto start = std::chrono::steady_clock::now();
  schedule::BuildSpec spec;
  spec.layers = point.layers;
  spec.ranks = point.ranks;
  spec.forward = {.levels = 4, .coarsening_factor = 4, .relax = schedule::Relax::FCF, .iterations = 2};
  spec.adjoint = {.levels = 4, .coarsening_factor = 4, .relax = schedule::Relax::FCF, .iterations = 1};
  spec.model.d_model = 768;
  spec.model.heads = 12;
  spec.model.seq = 1024;
  spec.model.batch = 8;
  const schedule::Program program = schedule::build_mgrit(spec);
  row.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  simulator::PlatformSpec platform = simulator::load_platform(simulator::find_platform("h100x32"));
  platform = simulator::with_nodes(platform, (point.ranks + 7) / 8);
  const simulator::Prediction prediction =
      simulator::simulate(program, platform, simulator::default_pricers());
  row.simulate_s = prediction.wall_s;
  row.platform_s = prediction.platform_wall_s;
  row.ops = prediction.ops;
  row.messages = prediction.messages;
  row.predicted_s = prediction.predicted_time_s;
  row.speedup = prediction.speedup;
  row.ok = true;
  return row;
}

// The point in a child process (its own SimGrid engine); the row comes back by pipe.
Row run_in_child(const Point& point) {
  Row row;
  row.point = point;
  int fds[2];
  if (pipe(fds) != 0) {
    std::snprintf(row.error, sizeof row.error, "pipe failed");
    return row;
  }
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Row result;
    result.point = point;
    try {
      result = run_point(point);
    } catch (const std::exception& error) {
      std::snprintf(result.error, sizeof result.error, "%s", error.what());
    }
    const bool written = write(fds[1], &result, sizeof result) == static_cast<ssize_t>(sizeof result);
    _exit(written ? 0 : 1);
  }
  close(fds[1]);
  if (read(fds[0], &row, sizeof row) != static_cast<ssize_t>(sizeof row))
    std::snprintf(row.error, sizeof row.error, "child process failed");
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Point> points;
  bool json = false;
  Point single{0, 0};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") json = true;
    else if (arg == "--layers" && i + 1 < argc) single.layers = std::stoi(argv[++i]);
    else if (arg == "--ranks" && i + 1 < argc) single.ranks = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: plait-simulator-bench [--layers N --ranks P] [--json]\n");
      return 2;
    }
  }
  if (single.layers > 0 || single.ranks > 0) {
    points.push_back({single.layers > 0 ? single.layers : 4096, single.ranks > 0 ? single.ranks : 1024, "single"});
  } else {
    // Deeper networks on 1024 ranks (ops grow, ranks fixed), then weak scaling
    // at 4 layers per rank (ops and ranks grow together).
    for (int layers : {1024, 2048, 4096, 8192, 16384, 32768, 65536}) points.push_back({layers, 1024, "layers"});
    for (int ranks : {128, 256, 512, 2048, 4096, 8192}) points.push_back({4 * ranks, ranks, "ranks"});
  }

  std::vector<Row> rows;
  if (!json)
    std::printf("%7s %6s %10s %10s %9s %10s %11s %13s %12s %8s\n", "layers", "ranks", "ops", "messages", "build_s",
                "simulate_s", "platform_s", "run us/event", "predicted_s", "speedup");
  for (const Point& point : points) {
    const Row row = run_in_child(point);
    rows.push_back(row);
    if (json) continue;
    if (!row.ok) {
      std::printf("%7d %6d  failed: %s\n", point.layers, point.ranks, row.error);
      continue;
    }
    std::printf("%7d %6d %10lld %10lld %9.3f %10.3f %11.3f %13.3f %12.5g %8.2f\n", point.layers, point.ranks,
                row.ops, row.messages, row.build_s, row.simulate_s, row.platform_s,
                1e6 * (row.simulate_s - row.platform_s) / static_cast<double>(row.ops + row.messages),
                row.predicted_s, row.speedup);
  }

  // Per series, least squares: run_s = a + b * (ops + messages), run_s being
  // simulate_s less the platform build (which grows as devices^2 in SimGrid's
  // name checks), each message a send and a receive scheduled like an op.
  struct Fit {
    std::string series;
    double slope = 0, intercept = 0, r2 = 0;
    int points = 0;
  };
  std::vector<Fit> fits;
  for (const char* series : {"layers", "ranks"}) {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    for (const Row& row : rows) {
      if (!row.ok || std::strcmp(row.point.series, series) != 0) continue;
      const double x = static_cast<double>(row.ops + row.messages), y = row.simulate_s - row.platform_s;
      n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y, syy += y * y;
    }
    if (n < 2 || n * sxx - sx * sx <= 0) continue;
    Fit fit{series};
    fit.points = static_cast<int>(n);
    fit.slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    fit.intercept = (sy - fit.slope * sx) / n;
    const double r = (n * sxy - sx * sy) / std::sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
    fit.r2 = r * r;
    fits.push_back(fit);
  }
  if (json) {
    nlohmann::json out = {{"format", "plait.simulator_bench"}, {"version", 1}, {"rows", nlohmann::json::array()}};
    for (const Row& row : rows)
      out["rows"].push_back({{"series", row.point.series}, {"layers", row.point.layers}, {"ranks", row.point.ranks}, {"ok", row.ok},
                             {"error", row.error}, {"ops", row.ops}, {"messages", row.messages},
                             {"build_s", row.build_s}, {"simulate_s", row.simulate_s},
                             {"platform_s", row.platform_s},
                             {"predicted_time_s", row.predicted_s}, {"speedup", row.speedup}});
    out["fits"] = nlohmann::json::array();
    for (const Fit& fit : fits)
      out["fits"].push_back({{"series", fit.series}, {"seconds_per_op_or_message", fit.slope},
                             {"intercept_s", fit.intercept}, {"r_squared", fit.r2}, {"points", fit.points}});
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const Fit& fit : fits)
      std::printf("fit (%s series, %d points): simulate_s - platform_s = %.4f + %.3f us * (ops + messages), r^2 = %.4f\n",
                  fit.series.c_str(), fit.points, fit.intercept, fit.slope * 1e6, fit.r2);
  }
  for (const Row& row : rows)
    if (!row.ok) return 1;
  return 0;
}
