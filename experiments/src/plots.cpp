// PNG plots of a sweep with gnuplot: speedup against depth, levels, cf and
// ranks, and time per step against the data-parallel degree and against
// devices (with memory per rank; one plot per model, depth and platform, a
// line per kind), as lines, one per family of points that
// differ only along that axis (predicted dashed, measured solid, one colour
// per family); predicted vs measured step time and speedup with y = x and
// +-5 % bands. Data and scripts stay in DIR/plots/ so a plot can be redrawn.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "detail/child_process.hpp"
#include "detail/families.hpp"
#include "detail/report.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments::detail {
namespace {

namespace fs = std::filesystem;

// gnuplot's single-quoted strings: a quote is doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Columns: 1 devices, 2 predicted s, 3 measured s, 4 min s, 5 max s,
// 6 predicted speedup, 7 measured speedup.
std::string points_table(const std::vector<PointResult>& results) {
  std::ostringstream out;
  out << "# devices predicted_s measured_s min_s max_s predicted_speedup measured_speedup\n";
  for (const PointResult& r : results) {
    if (!r.predicted_time_s) continue;
    out << devices(r.config) << ' ' << cell(r.predicted_time_s) << ' ' << cell(r.measured_time_s) << ' '
        << cell(r.measured_min_s ? r.measured_min_s : r.measured_time_s) << ' '
        << cell(r.measured_max_s ? r.measured_max_s : r.measured_time_s) << ' ' << cell(r.predicted_speedup) << ' '
        << cell(r.measured_speedup) << '\n';
  }
  return out.str();
}

const char* preamble =
    "set terminal pngcairo size 1100,650 font ',11'\n"
    "set datafile missing '?'\n"
    "set grid\n";

// The plot of an axis: speedup_vs_<axis> or time_vs_<axis>.
std::string plot_name(const Axis& axis) { return std::string(axis.time ? "time_vs_" : "speedup_vs_") + axis.name; }

// One data block per family (gnuplot `index i`): axis value, predicted and
// measured speedup, or time per step and the fullest rank's memory in MiB.
std::string family_table(const Axis& axis, const std::vector<Family>& families) {
  std::ostringstream out;
  for (const Family& family : families) {
    out << "# " << family.label << "\n# " << axis.name
        << (axis.time ? " predicted_s measured_s predicted_memory_mib\n" : " predicted_speedup measured_speedup\n");
    for (const PointResult* r : family.points) {
      out << axis.value(r->config) << ' ';
      if (axis.time) {
        std::optional<double> mib;
        if (r->predicted_memory_bytes) mib = *r->predicted_memory_bytes / 1048576.0;
        out << cell(r->predicted_time_s) << ' ' << cell(r->measured_time_s) << ' ' << cell(mib) << '\n';
      } else {
        out << cell(r->predicted_speedup) << ' ' << cell(r->measured_speedup) << '\n';
      }
    }
    out << "\n\n";
  }
  return out.str();
}

// Lines of `column` (predicted) and `column + 1` (measured, when any) per
// family, from `data` (family_table's file).
std::string family_script(const Axis& axis, const std::vector<Family>& families, const std::string& data,
                          const std::string& png, const std::string& title, const std::string& ylabel, int column,
                          bool measured) {
  std::string script = preamble;
  script += "set output '" + png + "'\n";
  script += "set title '" + title + (measured ? ": dashed predicted, solid measured" : " (predicted)") + "'\n";
  script += "set xlabel '" + std::string(axis.name) + "'\nset ylabel '" + ylabel + "'\n";
  script += "set key outside right top\n";
  if (axis.log_x) script += "set logscale x 2\n";
  if (axis.time) script += "set logscale y\n";
  script += "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n";
  script += "plot ";
  const std::string predicted = std::to_string(column), observed = std::to_string(column + 1);
  for (std::size_t i = 0; i < families.size(); ++i) {
    const std::string index = std::to_string(i), colour = "lc " + std::to_string(i + 1);
    const std::string label = "title " + quoted(families[i].label);
    script += (i ? ", \\\n     " : "") + quoted(data) + " index " + index + " using 1:" + predicted +
              " with linespoints dt 2 pt 6 " + colour + " " + (measured ? "notitle" : label);
    if (measured) script += ", '' index " + index + " using 1:" + observed + " with linespoints dt 1 pt 7 " + colour + " " + label;
  }
  return script + "\n";
}

// Both axes over the same range, so y = x is the diagonal; one series per rank
// count (devices). Times on log axes with the runs' min..max as bars.
std::string accuracy_script(const std::string& png, const std::string& quantity, int predicted_column,
                            int measured_column, bool times, std::pair<double, double> range,
                            const std::set<int>& ranks) {
  const bool error_bars = times;  // the runs' range is known for times only
  std::string script = preamble;
  char text[160];
  std::snprintf(text, sizeof text, "set xrange [%g:%g]\nset yrange [%g:%g]\n", range.first, range.second,
                range.first, range.second);
  script += text;
  script += "set key top left\nset output '" + png + "'\nset size square\n";
  if (times) script += "set logscale xy\n";  // step times span decades; speedups do not
  script += "set xlabel 'measured " + quantity + (error_bars ? " (bars: min..max of the runs)'\n" : "'\n");
  script += "set ylabel 'predicted " + quantity + "'\n";
  script += "plot x with lines lc 'black' title 'y = x', "
            "1.05*x with lines dt 2 lc 'gray40' title '+5 %', "
            "0.95*x with lines dt 2 lc 'gray40' title '-5 %'";
  int colour = 1;
  for (int r : ranks) {
    const std::string m = std::to_string(measured_column), p = std::to_string(predicted_column);
    const std::string select = "($1 == " + std::to_string(r) + " ? $" + p + " : NaN)";
    script += ", 'points.dat' using " + m + ":" + select + (error_bars ? ":4:5 with xerrorbars" : " with points") +
              " pt 7 lc " + std::to_string(colour++) + " title '" + std::to_string(r) + " device" + (r > 1 ? "s'" : "'");
  }
  return script + "\n";
}

// The range of the given values, widened by `pad` each way.
std::pair<double, double> padded_range(const std::vector<double>& values, double pad) {
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  return {*low / pad, *high * pad};
}

// The kinds compared against devices: one plot per group of points that
// share every setting but the kind and the split (depth, model, platform...),
// labelled by the settings in which the groups differ.
std::vector<std::pair<std::string, std::vector<PointResult>>> kind_groups(const std::vector<PointResult>& results) {
  static const std::set<std::string> split = {"kind", "ranks", "dp", "devices"};
  std::vector<const Setting*> varying;
  for (const Setting& setting : settings()) {
    if (split.contains(setting.axis)) continue;
    std::set<std::string> values;
    for (const PointResult& r : results)
      if (r.predicted_time_s) values.insert(setting.text(r.config));
    if (values.size() > 1) varying.push_back(&setting);
  }
  std::map<std::string, std::size_t> index;
  std::vector<std::pair<std::string, std::vector<PointResult>>> groups;
  for (const PointResult& r : results) {
    if (!r.predicted_time_s) continue;
    std::string label;
    for (const Setting* setting : varying)
      if (const std::string text = setting->text(r.config); !text.empty()) label += (label.empty() ? "" : " ") + text;
    const auto [it, added] = index.try_emplace(label, groups.size());
    if (added) groups.push_back({label, {}});
    groups[it->second].second.push_back(r);
  }
  return groups;
}

}  // namespace

std::vector<std::string> write_plots(const std::string& output_dir, const std::vector<PointResult>& results) {
  const fs::path dir = fs::path(output_dir) / "plots";
  fs::create_directories(dir);
  write_text_file((dir / "points.dat").string(), points_table(results));
  std::vector<double> times, speedups;
  std::set<int> measured_ranks;
  for (const PointResult& r : results) {
    if (!r.predicted_time_s || !r.measured_time_s) continue;
    measured_ranks.insert(devices(r.config));
    for (double value : {*r.predicted_time_s, *r.measured_time_s, r.measured_min_s.value_or(*r.measured_time_s),
                         r.measured_max_s.value_or(*r.measured_time_s)})
      times.push_back(value);
    if (r.predicted_speedup && r.measured_speedup && *r.predicted_speedup > 0 && *r.measured_speedup > 0)
      speedups.insert(speedups.end(), {*r.predicted_speedup, *r.measured_speedup});
  }
  const bool any_measured = !times.empty();
  const std::vector<PointResult> grid = grid_points(results);

  std::vector<std::pair<std::string, std::string>> scripts;  // png, script
  for (const Axis& axis : axes()) {
    const bool kinds = axis.name == std::string("devices");
    const auto groups = kinds ? kind_groups(grid)
                              : std::vector<std::pair<std::string, std::vector<PointResult>>>{{"", grid}};
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const std::vector<Family> families = families_along(axis, groups[g].second);
      if (families.empty()) continue;
      const std::string suffix = groups.size() > 1 ? "_" + std::to_string(g + 1) : "";
      const std::string name = plot_name(axis) + suffix;
      write_text_file((dir / (name + ".dat")).string(), family_table(axis, families));
      const std::string along = std::string(axis.name) + (kinds ? " (fastest split)" : "") +
                                (groups[g].first.empty() ? "" : ", " + groups[g].first);
      if (!axis.time) {
        scripts.push_back({name + ".png", family_script(axis, families, name + ".dat", name + ".png",
                                                        "Speedup over the serial step vs " + along,
                                                        "speedup over the serial step", 2, any_measured)});
        continue;
      }
      scripts.push_back({name + ".png", family_script(axis, families, name + ".dat", name + ".png",
                                                      "Time per step vs " + along, "time per step (s)", 2,
                                                      any_measured)});
      const std::string memory = std::string("memory_vs_") + axis.name + suffix + ".png";
      scripts.push_back({memory, family_script(axis, families, name + ".dat", memory,
                                               "Memory of the fullest rank vs " + along,
                                               "estimated memory per rank (MiB)", 4, false)});
    }
  }
  if (any_measured)
    scripts.push_back({"predicted_vs_measured.png",
                       accuracy_script("predicted_vs_measured.png", "step time (s)", 2, 3, true, padded_range(times, 1.25),
                                       measured_ranks)});
  if (!speedups.empty())
    scripts.push_back({"speedup_predicted_vs_measured.png",
                       accuracy_script("speedup_predicted_vs_measured.png", "speedup", 6, 7, false,
                                       padded_range(speedups, 1.1), measured_ranks)});

  std::vector<std::string> drawn;
  for (const auto& [png, script] : scripts)
    if (draw_plot(dir.string(), png.substr(0, png.size() - 4), script)) drawn.push_back("plots/" + png);
  return drawn;
}

bool draw_plot(const std::string& dir, const std::string& stem, const std::string& script) {
  write_text_file(dir + "/" + stem + ".gp", script);
  // gnuplot resolves the script's relative paths from its working directory.
  const std::vector<std::string> argv = {"/bin/sh", "-c", "cd \"$0\" && exec gnuplot \"$1\"", dir, stem + ".gp"};
  return run_process(argv, "/dev/null", dir + "/" + stem + ".log") == 0 && fs::exists(dir + "/" + stem + ".png");
}

}  // namespace plait::experiments::detail
