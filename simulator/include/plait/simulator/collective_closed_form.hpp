// An imported trace's collectives re-priced on a platform's links (replay
// --platform): the ring NCCL runs for large messages, in closed form.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plait/simulator/platform.hpp"
#include "plait/traces/dependency_replay.hpp"

namespace plait::simulator {

// Seconds of collective `name` (its kind read from the name: all-reduce,
// all-gather, reduce-scatter, all-to-all, broadcast, reduce, barrier,
// send/recv) of `bytes` among `members` (trace ranks, placed on the platform
// as simulate places ranks). An all-reduce, all-gather or reduce-scatter
// across the nodes of a star is NCCL's hierarchical form
// (costmodels/cluster_links.hpp); otherwise over the slowest link the group crosses:
// all-reduce 2(n-1) steps, all-gather / reduce-scatter / all-to-all n-1 steps,
// each of latency + bytes/n over the link's bandwidth; broadcast and reduce
// (n-1) latencies + bytes over the bandwidth; send/recv one message.
double collective_seconds(const PlatformSpec& platform, const std::vector<int>& device_of_rank, const std::string& name,
                          std::int64_t bytes, const std::vector<int>& members);

// The pricer replay_dependencies takes, for a trace of `ranks` ranks. Throws
// plait::Error when the platform has fewer devices than the trace has ranks
// (a trace fixes its rank count).
std::function<double(const traces::CollectiveInstance&)> collective_pricer(const PlatformSpec& platform, int ranks);

}  // namespace plait::simulator
