// Collectives in closed form on a platform's links (see collective_closed_form.hpp).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "plait/costmodels/cluster_links.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/collective_closed_form.hpp"

namespace plait::simulator {
namespace {

std::string squashed(const std::string& name) {  // "ncclKernel_AllReduce_RING" -> "ncclkernelallreducering"
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool has(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

// What a collective's name says it is; unnamed: an all-reduce, the common case.
enum class Family { all_reduce, gather, exchange, rooted, barrier, message };

Family family_of(const std::string& kind) {
  if (has(kind, "allreduce")) return Family::all_reduce;
  if (has(kind, "allgather") || has(kind, "reducescatter")) return Family::gather;
  if (has(kind, "alltoall") || has(kind, "sendrecv")) return Family::exchange;
  if (has(kind, "broadcast") || has(kind, "reduce")) return Family::rooted;
  if (has(kind, "barrier")) return Family::barrier;
  if (has(kind, "send") || has(kind, "recv")) return Family::message;
  return Family::all_reduce;
}

}  // namespace

double collective_seconds(const PlatformSpec& platform, const std::vector<int>& device_of_rank, const std::string& name,
                          std::int64_t bytes, const std::vector<int>& members) {
  const int devices_per_node = static_cast<int>(platform.node_devices.size());
  std::vector<int> devices;
  for (int member : members) devices.push_back(device_of_rank.at(static_cast<std::size_t>(member)));
  const costmodels::GroupSpan span =
      costmodels::span_of(devices, devices_per_node, std::min<int>(devices_per_node, int(device_of_rank.size())));
  const Family family = family_of(squashed(name));
  const double b = static_cast<double>(bytes);
  // Across the nodes of a star: NCCL's hierarchical forms (costmodels/cluster_links.hpp).
  if (span.nodes > 1 && platform.inter_node.topology == Topology::star &&
      (family == Family::all_reduce || family == Family::gather)) {
    const costmodels::RingAllreduceModel node{.step_latency_s = platform.intra_node.latency_s,
                                              .link_bytes_per_s = platform.intra_node.bandwidth_bytes_per_s,
                                              .pass_bytes_per_s = INFINITY};
    const costmodels::InterNodeLinks nics = inter_node_links(platform);
    return family == Family::gather ? costmodels::hierarchical_gather_seconds(node, nics, span, b)
                                    : costmodels::hierarchical_allreduce_seconds(node, nics, span, b);
  }
  const LinkSpec& link = span.nodes > 1 ? platform.inter_node.link : platform.intra_node;
  // A trace may hold only some of a group's members (sampled ranks): at least two take part.
  const double n = std::max<double>(2, static_cast<double>(members.size()));
  const double alpha = link.latency_s, bandwidth = link.bandwidth_bytes_per_s;
  switch (family) {
    case Family::all_reduce: return 2 * (n - 1) * (alpha + b / n / bandwidth);
    case Family::gather:
    case Family::exchange: return (n - 1) * (alpha + b / n / bandwidth);
    case Family::rooted: return (n - 1) * alpha + b / bandwidth;
    case Family::barrier: return 2 * (n - 1) * alpha;
    case Family::message: return alpha + b / bandwidth;
  }
  return 0;
}

std::function<double(const traces::CollectiveInstance&)> collective_pricer(const PlatformSpec& platform, int ranks) {
  if (!platform.simgrid_xml.empty()) {
    throw Error(platform.origin, "replay --platform on an imported trace needs a JSON platform (links in closed form)");
  }
  if (platform.device_count() < ranks) {
    throw Error(platform.origin.empty() ? platform.name : platform.origin,
                std::to_string(platform.device_count()) + " devices for a trace of " + std::to_string(ranks) +
                    " ranks: a trace fixes its rank count (more ranks need a Program: plait simulate)");
  }
  auto device_of_rank = place_ranks(platform, ranks);
  return [platform, device_of_rank](const traces::CollectiveInstance& instance) {
    return collective_seconds(platform, device_of_rank, instance.name, instance.bytes, instance.ranks);
  };
}

}  // namespace plait::simulator
