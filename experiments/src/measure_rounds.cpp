// wants_another_run and counted_runs: the sweep's rules for disturbed runs.
#include <algorithm>

#include "detail/measure_rounds.hpp"

namespace plait::experiments::detail {
namespace {

std::vector<double> steady_times(const std::vector<RunRecord>& runs) {
  std::vector<double> times;
  for (const RunRecord& run : runs)
    if (run.steady) times.push_back(run.time_s);
  std::sort(times.begin(), times.end());
  return times;
}

int majority(const MeasureSpec& measure) { return measure.repeats / 2 + 1; }

}  // namespace

bool wants_another_run(const std::vector<RunRecord>& runs, const MeasureSpec& measure) {
  if (int(runs.size()) >= measure.run_limit()) return false;
  const std::vector<double> times = steady_times(runs);
  if (int(times.size()) < measure.repeats) return true;
  const double median = times[times.size() / 2];
  return median > 0 && (times.back() - times.front()) / median > measure.max_spread;
}

CountedRuns counted_runs(const std::vector<RunRecord>& runs, const MeasureSpec& measure) {
  CountedRuns counted;
  const auto steady = std::count_if(runs.begin(), runs.end(), [](const RunRecord& run) { return run.steady; });
  counted.steady = steady >= majority(measure);
  for (const RunRecord& run : runs)
    if (run.steady || !counted.steady) counted.indices.push_back(run.index);
  if (!counted.steady) {
    const auto first = std::find_if(runs.begin(), runs.end(), [](const RunRecord& run) { return !run.steady; });
    counted.why_unsteady = std::to_string(runs.size() - std::size_t(steady)) + " of " + std::to_string(runs.size()) +
                           " runs disturbed";
    if (first != runs.end() && !first->reasons.empty()) counted.why_unsteady += ": " + first->reasons.front();
  }
  return counted;
}

}  // namespace plait::experiments::detail
