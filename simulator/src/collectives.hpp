// Collectives expanded into the point-to-point messages of real algorithms.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "plait/simulator/simulator.hpp"

namespace plait::simulator::detail {

// Where a collective's messages go. post never blocks; receive blocks until
// the next message from `peer` of `bytes` arrives and returns its value.
class MessagePort {
 public:
  virtual ~MessagePort() = default;
  virtual void post(int peer, std::int64_t bytes, double value) = 0;
  virtual double receive(int peer, std::int64_t bytes) = 0;
};

// Sum of `value` over `ranks` ranks, every rank calling with its own value.
// ring: 2(P-1) steps of bytes/P to the next rank (reduce-scatter, all-gather);
// recursive doubling: log2(P) pairwise exchanges of `bytes`, ranks beyond the
// largest power of two folded in before and served after (as MPICH does).
// `algorithm` is ring or recursive_doubling (see resolve).
double allreduce(MessagePort& port, AllreduceAlgorithm algorithm, int rank, int ranks,
                 std::int64_t bytes, double value);

// The two halves of the ring all-reduce, each P-1 steps of a P-th of `bytes`
// (rounded up) to the next rank while receiving from the previous: NCCL's
// reduce-scatter and all-gather. The reduce-scatter returns the sum of `value`
// over the ranks (partial values travel round); the all-gather hands `value` on.
double ring_reduce_scatter(MessagePort& port, int rank, int ranks, std::int64_t bytes, double value);
void ring_all_gather(MessagePort& port, int rank, int ranks, std::int64_t bytes, double value);

// The algorithm `automatic` stands for at this size.
AllreduceAlgorithm resolve(AllreduceAlgorithm algorithm, std::int64_t bytes, std::int64_t eager_limit_bytes);

// The ranks `rank` receives from in `allreduce` with either algorithm.
std::vector<int> allreduce_sources(int rank, int ranks);

// Where `rank` stands in a collective's group (schedule::collective_group);
// throws plait::Error when the group does not hold it.
int index_in_group(std::span<const int> group, int rank);

}  // namespace plait::simulator::detail
