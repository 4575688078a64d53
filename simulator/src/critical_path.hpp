// The critical path of a simulated run, traced back through its timelines.
#pragma once

#include <vector>

#include "rank_actor.hpp"

namespace plait::simulator::detail {

// From the rank that finished last, walks back: a receive that ended after it
// was posted was waiting for its message, so the path crosses to the sender at
// the send (unless it was a rendezvous posted after the send: the transfer then
// started with the receive); otherwise it goes to the rank's previous activity.
CriticalPath trace_critical_path(const std::vector<RankState>& states);

}  // namespace plait::simulator::detail
