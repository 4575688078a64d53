// Collectives in closed form on a platform's links (see collective_closed_form.hpp).
#include <algorithm>
#include <cctype>

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

}  // namespace

double collective_seconds(const PlatformSpec& platform, const std::vector<int>& device_of_rank, const std::string& name,
                          std::int64_t bytes, const std::vector<int>& members) {
  const int devices_per_node = static_cast<int>(platform.node_devices.size());
  bool crosses_nodes = false;
  for (int member : members) {
    const int node = device_of_rank.at(static_cast<std::size_t>(member)) / devices_per_node;
    crosses_nodes |= node != device_of_rank.at(static_cast<std::size_t>(members.front())) / devices_per_node;
  }
  const LinkSpec& link = crosses_nodes ? platform.inter_node.link : platform.intra_node;
  // A trace may hold only some of a group's members (sampled ranks): at least two take part.
  const double n = std::max<double>(2, static_cast<double>(members.size()));
  const double b = static_cast<double>(bytes), alpha = link.latency_s, bandwidth = link.bandwidth_bytes_per_s;
  const std::string kind = squashed(name);
  if (has(kind, "allreduce")) return 2 * (n - 1) * (alpha + b / n / bandwidth);
  if (has(kind, "allgather") || has(kind, "reducescatter") || has(kind, "alltoall") || has(kind, "sendrecv")) {
    return (n - 1) * (alpha + b / n / bandwidth);
  }
  if (has(kind, "broadcast") || has(kind, "reduce")) return (n - 1) * alpha + b / bandwidth;
  if (has(kind, "barrier")) return 2 * (n - 1) * alpha;
  if (has(kind, "send") || has(kind, "recv")) return alpha + b / bandwidth;
  return 2 * (n - 1) * (alpha + b / n / bandwidth);  // unnamed: an all-reduce, the common case
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
