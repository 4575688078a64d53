// Was the machine steady during a run? Judged from what the run recorded
// (plait-exec --json): its step times, its ranks' speed probes before and
// after the steps, and the host's load beside it (/proc/stat).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plait::experiments::detail {

// Where a steady run stays. Set from quiet runs of experiments/local.json on a
// 2-vCPU VM (docs/concepts/steady-runs.md has the figures).
struct SteadinessBounds {
  double foreign_cores = 0.25;    // another process's CPU time over the wall time
  double min_foreign_s = 0.05;    // below this, /proc/stat's 10 ms ticks cannot tell
  double steal_cores = 0.1;       // the hypervisor's steal over the wall time
  double probe_change = 0.3;      // a rank's probe after / before - 1, either way
  double step_range = 2.0;        // slowest step / fastest step
};

struct Steadiness {
  bool steady = true;
  std::vector<std::string> reasons;  // why not, one per sign, in words
};

// The verdict on one run's report. Fields the report lacks (an older
// plait-exec, a stand-in) are not judged.
Steadiness judge_run(const nlohmann::json& report, const SteadinessBounds& bounds = {});

// The verdict as stored in the run's file: {"steady": bool, "reasons": [...]}.
nlohmann::json steadiness_json(const Steadiness& verdict);

// DIR/calibration-steadiness.json: one object a calibration attempt,
// {"busiest_foreign_cores" >= 0, "at_s" >= 0, "steady" bool}, the last one kept.
struct CalibrationAttempt {
  double busiest_foreign_cores = 0, at_s = 0;
  bool steady = true;
};
std::string dump_calibration_attempts(const std::vector<CalibrationAttempt>& attempts);
// Throws plait::Error naming the origin, the attempt and the field.
std::vector<CalibrationAttempt> parse_calibration_attempts(const std::string& text, const std::string& origin);

}  // namespace plait::experiments::detail
