// Families of a sweep's points: the settings a point is labelled by, the
// axes the plots and tables run along, and the points that differ only along
// one of them (families.cpp). Shared by the plots and the report's tables.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plait/experiments/sweep.hpp"

namespace plait::experiments::detail {

// A figure for a table or a gnuplot data file: "%.6g", "?" when unknown.
std::string cell(const std::optional<double>& value);

// A setting a family is labelled by: its text for a point.
struct Setting {
  const char* axis;  // the name of the sweep axis it is
  std::string (*text)(const PointConfig&);
};
const std::vector<Setting>& settings();

// An axis of the line plots: its value, the settings that change along it,
// and what is plotted: the speedup, or the time per step (and memory per rank).
struct Axis {
  const char* name;
  int (*value)(const PointConfig&);
  bool log_x;
  std::set<std::string> varies;
  bool time = false;

  bool varies_with(const Setting& setting) const { return varies.contains(setting.axis); }
};
const std::vector<Axis>& axes();
const Axis& axis_named(const std::string& name);

// Points that share every setting but `axis`, in order of the axis.
struct Family {
  std::string label;
  std::vector<const PointResult*> points;
};

// Families point into `results`: a temporary would leave them dangling.
std::vector<Family> families_along(const Axis& axis, std::vector<PointResult>&& results) = delete;
// Points at the same axis value (splits of one device count): the fastest
// predicted; families of one point are left out.
std::vector<Family> families_along(const Axis& axis, const std::vector<PointResult>& results);

// Lines along an axis join grid points; rows of a CSV of measured steps are
// not families (they are in the accuracy plot and the report's tables).
std::vector<PointResult> grid_points(const std::vector<PointResult>& results);

}  // namespace plait::experiments::detail
