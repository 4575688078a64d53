// judge_run: signs that a run met other work, each against its bound.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "detail/steadiness.hpp"
#include "plait/schedule/error.hpp"

namespace plait::experiments::detail {
namespace {

std::string format(const char* pattern, double a, double b = 0) {
  char text[160];
  std::snprintf(text, sizeof text, pattern, a, b);
  return text;
}

std::vector<double> numbers(const nlohmann::json& report, const char* key) {
  std::vector<double> values;
  if (!report.contains(key) || !report.at(key).is_array()) return values;
  for (const auto& value : report.at(key))
    if (value.is_number()) values.push_back(value.get<double>());
  return values;
}

double number(const nlohmann::json& object, const char* key) {
  return object.contains(key) && object.at(key).is_number() ? object.at(key).get<double>() : 0.0;
}

// Another process's CPU time and the hypervisor's steal during one stretch.
void judge_host(const nlohmann::json& load, const char* stretch, const SteadinessBounds& bounds, Steadiness& verdict) {
  const double wall = number(load, "wall_s");
  if (wall <= 0) return;
  const double foreign = number(load, "foreign_cpu_s"), steal = number(load, "steal_s");
  if (foreign > bounds.min_foreign_s && foreign / wall > bounds.foreign_cores)
    verdict.reasons.push_back(format("other processes took %.2f cores during the ", foreign / wall) + stretch +
                              format(" (%.2f s of CPU time in %.2f s, /proc/stat)", foreign, wall));
  if (steal > bounds.min_foreign_s && steal / wall > bounds.steal_cores)
    verdict.reasons.push_back(format("the hypervisor stole %.2f cores during the ", steal / wall) + stretch +
                              format(" (%.2f s of %.2f s)", steal, wall));
}

}  // namespace

Steadiness judge_run(const nlohmann::json& report, const SteadinessBounds& bounds) {
  Steadiness verdict;
  if (!report.is_object()) return verdict;
  if (report.contains("host_load") && report.at("host_load").is_object()) {
    const nlohmann::json& host = report.at("host_load");
    if (host.contains("steps")) judge_host(host.at("steps"), "steps", bounds, verdict);
    if (host.contains("serial")) judge_host(host.at("serial"), "serial baseline", bounds, verdict);
  }
  const std::vector<double> before = numbers(report, "speed_probe_before_s"),
                            after = numbers(report, "speed_probe_after_s");
  for (std::size_t rank = 0; rank < std::min(before.size(), after.size()); ++rank) {
    if (before[rank] <= 0 || after[rank] <= 0) continue;  // a rank without a forward step
    const double change = after[rank] / before[rank] - 1;
    if (std::abs(change) > bounds.probe_change)
      verdict.reasons.push_back("rank " + std::to_string(rank) +
                                format("'s speed probe changed by %+.0f %% from before to after the steps", change * 100));
  }
  const std::vector<double> steps = numbers(report, "step_times_s");
  if (steps.size() >= 2) {
    const auto [fastest, slowest] = std::minmax_element(steps.begin(), steps.end());
    if (*fastest > 0 && *slowest / *fastest > bounds.step_range)
      verdict.reasons.push_back("step " + std::to_string(slowest - steps.begin() + 1) +
                                format(" took %.2fx the fastest (%.3g s", *slowest / *fastest, *slowest) +
                                format(" against %.3g s)", *fastest));
  }
  verdict.steady = verdict.reasons.empty();
  return verdict;
}

nlohmann::json steadiness_json(const Steadiness& verdict) {
  return {{"steady", verdict.steady}, {"reasons", verdict.reasons}};
}

std::string dump_calibration_attempts(const std::vector<CalibrationAttempt>& attempts) {
  nlohmann::json list = nlohmann::json::array();
  for (const CalibrationAttempt& attempt : attempts)
    list.push_back({{"busiest_foreign_cores", attempt.busiest_foreign_cores}, {"at_s", attempt.at_s},
                    {"steady", attempt.steady}});
  return list.dump(1) + "\n";
}

std::vector<CalibrationAttempt> parse_calibration_attempts(const std::string& text, const std::string& origin) {
  const auto list = nlohmann::json::parse(text, nullptr, false);
  if (list.is_discarded()) throw Error(origin, "is not JSON");
  if (!list.is_array() || list.empty()) throw Error(origin, "is not a non-empty list of calibration attempts");
  std::vector<CalibrationAttempt> attempts;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& entry = list[i];
    const std::string where = origin + ": /" + std::to_string(i);
    if (!entry.is_object()) throw Error(where, "is not an object");
    const auto seconds = [&](const char* key) {
      if (!entry.contains(key) || !entry.at(key).is_number() || !(entry.at(key).get<double>() >= 0))
        throw Error(where + "/" + key, "must be a number >= 0");
      return entry.at(key).get<double>();
    };
    CalibrationAttempt attempt;
    attempt.busiest_foreign_cores = seconds("busiest_foreign_cores");
    attempt.at_s = seconds("at_s");
    if (!entry.contains("steady") || !entry.at("steady").is_boolean()) throw Error(where + "/steady", "must be true or false");
    attempt.steady = entry.at("steady").get<bool>();
    attempts.push_back(attempt);
  }
  return attempts;
}

}  // namespace plait::experiments::detail
