// The report's tables of splits: each family's fastest split of its devices
// by device count (the kinds compared), and along the data-parallel degree
// at one device count (where the minimum lies, and the two pure ends).
#include <sstream>

#include "detail/families.hpp"
#include "detail/report.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments::detail {

std::string devices_table(const std::vector<PointResult>& results) {
  const std::vector<PointResult> grid = grid_points(results);  // families point into it
  const std::vector<Family> families = families_along(axis_named("devices"), grid);
  if (families.empty()) return "";
  std::ostringstream out;
  out << "| family | devices | fastest split (ranks x dp) | predicted s | measured s | memory of the fullest rank |\n"
      << "| --- | ---: | --- | ---: | ---: | ---: |\n";
  for (const Family& family : families)
    for (const PointResult* r : family.points) {
      const PointConfig& c = r->config;
      out << "| " << family.label << " | " << devices(c) << " | " << c.ranks << " x " << c.dp << " | "
          << cell(r->predicted_time_s) << " | " << cell(r->measured_time_s) << " | "
          << (r->predicted_memory_bytes ? schedule::format_bytes(*r->predicted_memory_bytes) : "?") << " |\n";
    }
  return out.str();
}

std::string data_parallel_table(const std::vector<PointResult>& results) {
  const std::vector<PointResult> grid = grid_points(results);
  const std::vector<Family> families = families_along(axis_named("dp"), grid);
  if (families.empty()) return "";
  std::ostringstream out;
  out << "| family | fewest replicas: ranks x dp, s | fastest: ranks x dp, s | most replicas: ranks x dp, s | shape |\n"
      << "| --- | --- | --- | --- | --- |\n";
  const auto split = [](const PointResult* r) {
    return std::to_string(r->config.ranks) + " x " + std::to_string(r->config.dp) + ", " + cell(r->predicted_time_s);
  };
  for (const Family& family : families) {
    const PointResult* fastest = family.points.front();
    for (const PointResult* r : family.points)
      if (*r->predicted_time_s < *fastest->predicted_time_s) fastest = r;
    const PointResult *fewest = family.points.front(), *most = family.points.back();
    const char* shape = fastest == most    ? "monotone: the most replicas fastest"
                        : fastest == fewest ? "monotone: the fewest replicas fastest"
                                            : "U-shaped: the minimum inside";
    out << "| " << family.label << " | " << split(fewest) << " | " << split(fastest) << " | " << split(most) << " | "
        << shape << " |\n";
  }
  return out.str();
}

}  // namespace plait::experiments::detail
