// Predicted vs measured: the whole run and each cost key.
#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "plait/traces/trace.hpp"

namespace plait::traces {
namespace {

double relative(double predicted, double measured) {
  return measured > 0 ? (predicted - measured) / measured : (predicted > 0 ? INFINITY : 0.0);
}

}  // namespace

Comparison compare(const Trace& measured, const Trace& predicted) {
  Comparison out;
  out.measured_makespan_s = measured.makespan();
  out.predicted_makespan_s = predicted.makespan();
  out.relative_error = relative(out.predicted_makespan_s, out.measured_makespan_s);
  std::map<std::string, KeyComparison> keys;
  for (const auto& event : measured.events) {
    auto& key = keys[event.cost_key];
    key.measured_count += 1;
    key.measured_s += event.end - event.start;
  }
  for (const auto& event : predicted.events) {
    auto& key = keys[event.cost_key];
    key.predicted_count += 1;
    key.predicted_s += event.end - event.start;
  }
  for (auto& [name, key] : keys) {
    key.cost_key = name;
    key.relative_error = relative(key.predicted_s, key.measured_s);
    out.keys.push_back(key);
  }
  return out;
}

std::string format_comparison(const Comparison& comparison) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %9s %9s %13s %13s %9s\n", "cost key", "measured", "predicted",
                "measured s", "predicted s", "error");
  out += line;
  for (const auto& key : comparison.keys) {
    std::snprintf(line, sizeof line, "%-16s %9lld %9lld %13.6f %13.6f %+8.1f%%\n", key.cost_key.c_str(),
                  static_cast<long long>(key.measured_count), static_cast<long long>(key.predicted_count),
                  key.measured_s, key.predicted_s, 100 * key.relative_error);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-16s %9s %9s %13.6f %13.6f %+8.1f%%\n", "step (makespan)", "", "",
                comparison.measured_makespan_s, comparison.predicted_makespan_s, 100 * comparison.relative_error);
  out += line;
  return out;
}

void to_json(nlohmann::json& out, const Comparison& comparison) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& key : comparison.keys) {
    keys.push_back({{"cost_key", key.cost_key},
                    {"measured_count", key.measured_count},
                    {"predicted_count", key.predicted_count},
                    {"measured_s", key.measured_s},
                    {"predicted_s", key.predicted_s},
                    {"relative_error", key.relative_error}});
  }
  out = {{"measured_makespan_s", comparison.measured_makespan_s},
         {"predicted_makespan_s", comparison.predicted_makespan_s},
         {"relative_error", comparison.relative_error},
         {"cost_keys", keys}};
}

}  // namespace plait::traces
