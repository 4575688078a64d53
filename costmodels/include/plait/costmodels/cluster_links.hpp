// Collectives and messages that cross nodes, as NCCL runs them on a cluster
// of nodes joined by their NICs, in closed form: what the step estimator,
// the simulator's tensor-parallel all-reduces and the inter-node fit share.
//
// A group of g devices on each of N nodes (block placement) all-reduces B
// bytes hierarchically: a ring reduce-scatter inside each node, then each
// device's B / g shard all-reduced by a ring over the N nodes, then a ring
// all-gather inside each node. The inter-node ring's 2 (N - 1) steps move
// B / N bytes out of each node a step (all g shards of a node together); `s`
// groups that run the same collective at once on a node (all the
// tensor-parallel groups of a node, the replicas' gradient sums of every
// stage) share its NICs:
//   t = o + ring_intra(g, B) + 2 (N - 1) (latency + s B / (N bandwidth_node))
// o: each cross-node collective's own cost (launch, proxy threads, the
// synchronisation of the nodes). A message between nodes sent while s
// devices of its node send too: latency + s bytes / bandwidth_node.
#pragma once

#include <span>

#include "plait/costmodels/allreduce_fit.hpp"

namespace plait::costmodels {

struct InterNodeLinks {
  double node_bytes_per_s = 0;       // a node's NICs together (800 Gb/s: 1e11)
  double latency_s = 0;              // one inter-node step or message
  double collective_overhead_s = 0;  // each collective that crosses nodes
};

// How a group of devices lies over nodes of `devices_per_node`.
struct GroupSpan {
  int nodes = 1;     // distinct nodes
  int per_node = 1;  // the group's devices on each (its largest share)
  int sharing = 1;   // groups of the same collective on a node at once
};

// `devices`: the group's device indices (node = index / devices_per_node).
// `busy_devices`: the devices of a node that run a collective of the same
// kind at the same time (min of the node's devices and the Program's ranks):
// sharing = busy_devices / per_node, at least 1.
GroupSpan span_of(std::span<const int> devices, int devices_per_node, int busy_devices);

// The hierarchical all-reduce above; a group on one node is the plain ring.
double hierarchical_allreduce_seconds(const RingAllreduceModel& intra, const InterNodeLinks& inter,
                                      const GroupSpan& span, double bytes);

// Half of it: an all-gather or a reduce-scatter of `bytes` (the whole
// buffer), a ring inside each node and one over the nodes, each moving its
// data once: o + (g - 1)(alpha_node + B / (g beta_node)) + (N - 1)(latency + s B / (N bandwidth_node)).
double hierarchical_gather_seconds(const RingAllreduceModel& intra, const InterNodeLinks& inter, const GroupSpan& span,
                                   double bytes);

// A message between nodes while `sharing` devices of the node send at once.
double inter_node_message_seconds(const InterNodeLinks& inter, int sharing, double bytes);

}  // namespace plait::costmodels
