// Collectives and messages across nodes in closed form (cluster_links.hpp).
#include <algorithm>
#include <map>

#include "plait/costmodels/cluster_links.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

GroupSpan span_of(std::span<const int> devices, int devices_per_node, int busy_devices) {
  if (devices_per_node < 1) throw Error("group span", "a node needs at least one device");
  std::map<int, int> on_node;
  for (int device : devices) ++on_node[device / devices_per_node];
  GroupSpan span;
  span.nodes = std::max<int>(1, int(on_node.size()));
  for (const auto& [node, count] : on_node) span.per_node = std::max(span.per_node, count);
  span.sharing = std::max(1, std::min(busy_devices, devices_per_node) / span.per_node);
  return span;
}

double hierarchical_allreduce_seconds(const RingAllreduceModel& intra, const InterNodeLinks& inter,
                                      const GroupSpan& span, double bytes) {
  const double inside = intra.seconds(span.per_node, bytes);
  if (span.nodes <= 1) return inside;
  if (inter.node_bytes_per_s <= 0) throw Error("inter-node all-reduce", "the nodes' bandwidth must be > 0");
  const double n = span.nodes;
  return inter.collective_overhead_s + inside +
         2 * (n - 1) * (inter.latency_s + span.sharing * bytes / (n * inter.node_bytes_per_s));
}

double hierarchical_gather_seconds(const RingAllreduceModel& intra, const InterNodeLinks& inter, const GroupSpan& span,
                                   double bytes) {
  const double g = span.per_node;
  const double inside = (g - 1) * (intra.step_latency_s + bytes / (g * intra.link_bytes_per_s));
  if (span.nodes <= 1) return inside;
  if (inter.node_bytes_per_s <= 0) throw Error("inter-node all-gather", "the nodes' bandwidth must be > 0");
  const double n = span.nodes;
  return inter.collective_overhead_s + inside +
         (n - 1) * (inter.latency_s + span.sharing * bytes / (n * inter.node_bytes_per_s));
}

double inter_node_message_seconds(const InterNodeLinks& inter, int sharing, double bytes) {
  if (inter.node_bytes_per_s <= 0) throw Error("inter-node message", "the nodes' bandwidth must be > 0");
  return inter.latency_s + std::max(sharing, 1) * bytes / inter.node_bytes_per_s;
}

}  // namespace plait::costmodels
