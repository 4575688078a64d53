// PNG plots of a sweep with gnuplot: predicted and measured speedup vs depth,
// levels, cf and ranks, and predicted vs measured step time with y = x and
// +-5 % bands. Data and scripts stay in DIR/plots/ so a plot can be redrawn.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "detail/child_process.hpp"
#include "detail/report.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments::detail {
namespace {

namespace fs = std::filesystem;

std::string cell(const std::optional<double>& value) {
  if (!value) return "?";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", *value);
  return text;
}

// Columns: 1 layers, 2 levels, 3 cf, 4 ranks, 5 predicted speedup, 6 measured
// speedup, 7 predicted s, 8 measured s, 9 measured min s, 10 measured max s.
std::string data_table(const std::vector<PointResult>& results) {
  std::ostringstream out;
  out << "# layers levels cf ranks predicted_speedup measured_speedup predicted_s measured_s min_s max_s\n";
  for (const PointResult& r : results) {
    if (!r.predicted_time_s) continue;
    out << r.config.layers << ' ' << r.config.levels << ' ' << r.config.cf << ' ' << r.config.ranks << ' '
        << cell(r.predicted_speedup) << ' ' << cell(r.measured_speedup) << ' ' << cell(r.predicted_time_s) << ' '
        << cell(r.measured_time_s) << ' ' << cell(r.measured_min_s) << ' ' << cell(r.measured_max_s) << '\n';
  }
  return out.str();
}

const char* preamble =
    "set terminal pngcairo size 900,600 font ',11'\n"
    "set datafile missing '?'\n"
    "set grid\n"
    "set key top left\n";

std::string speedup_script(const std::string& axis, int column, bool log_x, bool any_measured) {
  std::string script = preamble;
  script += "set output '" + std::string("speedup_vs_") + axis + ".png'\n";
  script += "set xlabel '" + axis + "'\nset ylabel 'speedup over the serial step'\n";
  if (log_x) script += "set logscale x 2\n";
  script += "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n";
  const std::string x = std::to_string(column);
  script += "plot 'points.dat' using " + x + ":5 with points pt 6 ps 1.4 title 'predicted'";
  if (any_measured) script += ", '' using " + x + ":6 with points pt 7 ps 1.0 title 'measured'";
  return script + "\n";
}

// Both axes over the same range, so y = x is the diagonal.
std::string accuracy_script(double low, double high) {
  std::string script = preamble;
  char range[96];
  std::snprintf(range, sizeof range, "set xrange [%g:%g]\nset yrange [%g:%g]\n", low, high, low, high);
  script += range;
  script += "set output 'predicted_vs_measured.png'\n"
            "set xlabel 'measured step time (s; bars: min..max of the runs)'\n"
            "set ylabel 'predicted step time (s)'\n"
            "set logscale xy\n"
            "set size square\n"
            "plot x with lines lc 'black' title 'y = x', "
            "1.05*x with lines dt 2 lc 'gray40' title '+5 %', "
            "0.95*x with lines dt 2 lc 'gray40' title '-5 %', "
            "'points.dat' using 8:7:9:10 with xerrorbars pt 7 lc 'blue' title 'points'\n";
  return script;
}

}  // namespace

std::vector<std::string> write_plots(const std::string& output_dir, const std::vector<PointResult>& results) {
  const fs::path dir = fs::path(output_dir) / "plots";
  fs::create_directories(dir);
  write_text_file((dir / "points.dat").string(), data_table(results));
  bool any_measured = false;
  double low = 0, high = 0;
  std::set<int> layers, levels, cfs, ranks;
  for (const PointResult& r : results) {
    if (!r.predicted_time_s) continue;
    if (r.measured_time_s) {
      for (double value : {*r.predicted_time_s, *r.measured_time_s, r.measured_min_s.value_or(*r.measured_time_s),
                           r.measured_max_s.value_or(*r.measured_time_s)}) {
        low = any_measured ? std::min(low, value) : value;
        high = any_measured ? std::max(high, value) : value;
        any_measured = true;
      }
    }
    layers.insert(r.config.layers);
    levels.insert(r.config.levels);
    cfs.insert(r.config.cf);
    ranks.insert(r.config.ranks);
  }
  std::vector<std::pair<std::string, std::string>> scripts;  // png, script
  if (layers.size() > 1) scripts.push_back({"speedup_vs_layers.png", speedup_script("layers", 1, true, any_measured)});
  if (levels.size() > 1) scripts.push_back({"speedup_vs_levels.png", speedup_script("levels", 2, false, any_measured)});
  if (cfs.size() > 1) scripts.push_back({"speedup_vs_cf.png", speedup_script("cf", 3, false, any_measured)});
  if (ranks.size() > 1) scripts.push_back({"speedup_vs_ranks.png", speedup_script("ranks", 4, true, any_measured)});
  if (any_measured) scripts.push_back({"predicted_vs_measured.png", accuracy_script(low / 1.25, high * 1.25)});

  std::vector<std::string> drawn;
  for (const auto& [png, script] : scripts) {
    const fs::path script_path = dir / (png.substr(0, png.size() - 4) + ".gp");
    write_text_file(script_path.string(), script);
    // gnuplot resolves the script's relative paths from its working directory.
    const std::vector<std::string> argv = {"/bin/sh", "-c", "cd \"$0\" && exec gnuplot \"$1\"", dir.string(),
                                           script_path.filename().string()};
    const std::string log = (dir / (png.substr(0, png.size() - 4) + ".log")).string();
    if (run_process(argv, "/dev/null", log) == 0 && fs::exists(dir / png)) drawn.push_back("plots/" + png);
  }
  return drawn;
}

}  // namespace plait::experiments::detail
