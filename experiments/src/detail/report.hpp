// A sweep's outputs besides results.csv: PNG plots and report.md.
#pragma once

#include <string>
#include <vector>

#include "plait/experiments/sweep.hpp"

namespace plait::experiments::detail {

// Writes DIR/plots/ (data, gnuplot scripts, PNGs); returns the PNGs drawn,
// relative to DIR (none when gnuplot is missing or fails: see plots/*.log).
std::vector<std::string> write_plots(const std::string& output_dir, const std::vector<PointResult>& results);
// Writes DIR/STEM.gp and runs gnuplot on it in DIR (its relative paths are
// DIR's); whether DIR/STEM.png was drawn (why not: DIR/STEM.log).
bool draw_plot(const std::string& dir, const std::string& stem, const std::string& script);

// A markdown table of the kinds against devices: for each family of points
// that differ only in ranks and dp, its fastest predicted split at each device
// count, with its time per step (predicted, measured) and memory per rank;
// "" when no family spans two device counts.
std::string devices_table(const std::vector<PointResult>& results);
// A markdown table along the data-parallel degree: for each family of points
// that differ only in ranks and dp (one device count), the split with the
// fewest replicas, the fastest and the one with the most, and whether the
// time is U-shaped in dp; "" when no family has two splits (split_tables.cpp).
std::string data_parallel_table(const std::vector<PointResult>& results);

// The section on points from a CSV of measured steps: error tables by TP,
// PP, DP, micro batch and model size (SimGrid's, and held-out where the sweep
// fitted the kernel model), the worst rows with why, every row; "" when none.
std::string step_rows_section(const SweepSpec& spec, const std::vector<PointResult>& results);

// report.md: the sweep, its error summary next to the noise floor, the plots
// and a table of every point. `profile`: the profile that priced it ("" none).
std::string format_report(const SweepSpec& spec, const std::vector<PointResult>& results,
                          const SweepSummary& summary, const std::vector<std::string>& plots,
                          const std::string& profile);

}  // namespace plait::experiments::detail
