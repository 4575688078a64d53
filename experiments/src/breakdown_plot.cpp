// The breakdown's per-rank stacked bar (see breakdown_plot.hpp).
#include <filesystem>
#include <sstream>

#include "detail/report.hpp"
#include "plait/experiments/breakdown_plot.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {

bool write_breakdown_plot(const traces::Breakdown& breakdown, const std::string& png_path) {
  namespace fs = std::filesystem;
  const fs::path png = fs::absolute(png_path);
  const std::string stem = png.stem().string();
  fs::create_directories(png.parent_path());
  std::ostringstream data;
  data << "# rank compute_ms non_compute_ms idle_ms\n";
  int bars = 0;
  for (const traces::RankBreakdown& row : breakdown.rows) {
    if (row.step >= 0) continue;
    data << row.rank << ' ' << row.compute_s * 1e3 << ' ' << row.non_compute_s * 1e3 << ' ' << row.idle_s * 1e3 << '\n';
    ++bars;
  }
  write_text_file((png.parent_path() / (stem + ".dat")).string(), data.str());
  std::ostringstream script;
  script << "set terminal pngcairo size " << std::max(640, 160 + 40 * bars) << ",480\n"
         << "set output '" << stem << ".png'\n"
         << "set title \"Where each rank's time went (first to last event)\"\n"
         << "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n"
         << "set boxwidth 0.7\nset xlabel 'rank'\nset ylabel 'time (ms)'\nset key below\nset grid ytics\n"
         << "plot '" << stem << ".dat' using 2:xtic(1) title 'compute' lc rgb '#4c72b0', "
         << "'' using 3 title 'communication, memory (not under compute)' lc rgb '#dd8452', "
         << "'' using 4 title 'idle' lc rgb '#bbbbbb'\n";
  return detail::draw_plot(png.parent_path().string(), stem, script.str());
}

}  // namespace plait::experiments
