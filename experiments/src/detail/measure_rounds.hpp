// Which of a point's runs count, and whether it needs another: a run judged
// disturbed (detail::judge_run) is replaced, and runs that spread too far
// get company, up to MeasureSpec::run_limit() runs a point.
#pragma once

#include <string>
#include <vector>

#include "plait/experiments/sweep.hpp"

namespace plait::experiments::detail {

struct RunRecord {
  int index = 0;       // measured-<index>.json
  double time_s = 0;   // its time per step
  bool steady = true;
  std::vector<std::string> reasons;  // why not steady
};

// Another run is due: fewer than `repeats` steady runs, or steady runs
// spreading past max_spread; never past run_limit() runs.
bool wants_another_run(const std::vector<RunRecord>& runs, const MeasureSpec& measure);

// The runs a point's figures come from: its steady runs when they are a
// majority of `repeats` (3 of 5), else every run (the point is unsteady).
struct CountedRuns {
  std::vector<int> indices;
  bool steady = true;
  std::string why_unsteady;  // "4 of 10 runs disturbed: <the first reason>"
};
CountedRuns counted_runs(const std::vector<RunRecord>& runs, const MeasureSpec& measure);

}  // namespace plait::experiments::detail
