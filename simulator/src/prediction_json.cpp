// JSON form of a Prediction (plait simulate --json).
#include <nlohmann/json.hpp>

#include "plait/simulator/simulator.hpp"

namespace plait::simulator {

void to_json(nlohmann::json& out, const Prediction& prediction) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const RankReport& report : prediction.rank_reports) {
    const double total = report.busy_s + report.communication_s + report.idle_s;
    const auto share = [total](double part) { return total > 0 ? part / total : 0.0; };
    ranks.push_back({{"rank", report.rank},
                     {"host", report.host},
                     {"busy_s", report.busy_s},
                     {"communication_s", report.communication_s},
                     {"idle_s", report.idle_s},
                     {"busy_share", share(report.busy_s)},
                     {"communication_share", share(report.communication_s)},
                     {"idle_share", share(report.idle_s)},
                     {"overlapped_communication_s", report.overlapped_communication_s}});
  }
  const CriticalPath& path = prediction.critical_path;
  nlohmann::json segments = nlohmann::json::array();
  for (const PathSegment& segment : path.segments)
    segments.push_back({{"rank", segment.rank},
                        {"start", segment.start},
                        {"end", segment.end},
                        {"compute_s", segment.compute_s},
                        {"ops", segment.ops}});
  out = {{"format", "plait.prediction"},
         {"version", 1},
         {"platform", prediction.platform},
         {"rank_count", prediction.ranks},
         {"predicted_time_s", prediction.predicted_time_s},
         {"serial_predicted_time_s", prediction.serial_predicted_time_s},
         {"speedup", prediction.speedup},
         {"ops", prediction.ops},
         {"messages", prediction.messages},
         {"simulation_wall_s", prediction.wall_s},
         {"platform_build_wall_s", prediction.platform_wall_s},
         {"ranks", std::move(ranks)},
         {"critical_path",
          {{"length_s", path.length_s},
           {"compute_s", path.compute_s},
           {"communication_s", path.communication_s},
           {"messages", path.messages},
           {"block_steps", path.block_steps},
           {"dry_run_block_steps", path.dry_run_block_steps},
           {"segments", std::move(segments)}}}};
}

}  // namespace plait::simulator
