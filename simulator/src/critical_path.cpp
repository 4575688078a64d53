#include "critical_path.hpp"

#include <algorithm>

namespace plait::simulator::detail {

CriticalPath trace_critical_path(const std::vector<RankState>& states) {
  CriticalPath path;
  if (states.empty()) return path;
  int rank = 0;
  for (const RankState& state : states)
    if (state.finished_at > states[static_cast<std::size_t>(rank)].finished_at) rank = state.rank;

  path.length_s = states[static_cast<std::size_t>(rank)].finished_at;
  PathSegment segment{rank, 0, path.length_s, 0, 0};
  auto index = static_cast<std::int64_t>(states[static_cast<std::size_t>(rank)].timeline.size()) - 1;
  while (index >= 0) {
    const Activity& activity = states[static_cast<std::size_t>(rank)].timeline[static_cast<std::size_t>(index)];
    if (activity.kind == Activity::Kind::recv && activity.end > activity.start && activity.rendezvous &&
        activity.sent_at < activity.start) {
      // Rendezvous posted after the send: the transfer began when this rank
      // got here, so the path stays on this rank.
      path.communication_s += activity.end - activity.start;
      --index;
      continue;
    }
    if (activity.kind == Activity::Kind::recv && activity.end > activity.start) {
      segment.start = activity.end;
      path.segments.push_back(segment);
      path.communication_s += activity.end - activity.sent_at;
      ++path.messages;
      rank = activity.peer;
      index = activity.peer_activity - 1;
      segment = PathSegment{rank, 0, activity.sent_at, 0, 0};
      continue;
    }
    if (activity.kind == Activity::Kind::compute) {
      segment.compute_s += activity.end - activity.start;
      path.compute_s += activity.end - activity.start;
      if (activity.block_step) ++path.block_steps;
      ++segment.ops;
    }
    --index;
  }
  segment.start = 0;
  path.segments.push_back(segment);
  std::reverse(path.segments.begin(), path.segments.end());
  return path;
}

}  // namespace plait::simulator::detail
