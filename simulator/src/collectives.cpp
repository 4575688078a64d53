#include "collectives.hpp"

#include <algorithm>
#include <set>
#include <string>

#include "plait/schedule/error.hpp"

namespace plait::simulator {

std::string_view to_string(AllreduceAlgorithm algorithm) {
  switch (algorithm) {
    case AllreduceAlgorithm::automatic: return "auto";
    case AllreduceAlgorithm::ring: return "ring";
    case AllreduceAlgorithm::recursive_doubling: return "recursive-doubling";
  }
  return "";
}

AllreduceAlgorithm parse_allreduce_algorithm(std::string_view text) {
  if (text == "auto") return AllreduceAlgorithm::automatic;
  if (text == "ring") return AllreduceAlgorithm::ring;
  if (text == "recursive-doubling") return AllreduceAlgorithm::recursive_doubling;
  throw Error("allreduce", "unknown algorithm \"" + std::string(text) +
                               "\" (expected auto, ring or recursive-doubling)");
}

namespace detail {
namespace {

int largest_power_of_two_at_most(int n) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

// Recursive doubling's view of the ranks: `extra` = ranks - power; ranks below
// 2 * extra pair up (even folds into odd), the others shift down by extra.
struct Doubling {
  int power = 1;
  int extra = 0;
  int new_rank(int rank) const {
    if (rank < 2 * extra) return rank % 2 == 1 ? rank / 2 : -1;
    return rank - extra;
  }
  int old_rank(int new_rank) const { return new_rank < extra ? 2 * new_rank + 1 : new_rank + extra; }
};

Doubling doubling_of(int ranks) {
  const int power = largest_power_of_two_at_most(ranks);
  return {power, ranks - power};
}

double recursive_doubling(MessagePort& port, int rank, int ranks, std::int64_t bytes, double value) {
  const Doubling d = doubling_of(ranks);
  double sum = value;
  if (rank < 2 * d.extra && rank % 2 == 0) {  // folded in: hand over, wait for the result
    port.post(rank + 1, bytes, sum);
    return port.receive(rank + 1, bytes);
  }
  if (rank < 2 * d.extra) sum += port.receive(rank - 1, bytes);
  const int me = d.new_rank(rank);
  for (int mask = 1; mask < d.power; mask <<= 1) {
    const int partner = d.old_rank(me ^ mask);
    port.post(partner, bytes, sum);
    sum += port.receive(partner, bytes);
  }
  if (rank < 2 * d.extra) port.post(rank - 1, bytes, sum);
  return sum;
}

// The chunk each ring step moves: a `ranks`-th of the buffer, at least a byte.
std::int64_t ring_chunk(int ranks, std::int64_t bytes) {
  return std::max<std::int64_t>(1, (bytes + ranks - 1) / ranks);
}

}  // namespace

double allreduce(MessagePort& port, AllreduceAlgorithm algorithm, int rank, int ranks, std::int64_t bytes,
                 double value) {
  if (ranks <= 1) return value;
  if (algorithm != AllreduceAlgorithm::ring) return recursive_doubling(port, rank, ranks, bytes, value);
  // The ring: its reduce-scatter leaves the sum on every rank (the scalar's
  // partial values travel round), its all-gather hands it round once more.
  const double sum = ring_reduce_scatter(port, rank, ranks, bytes, value);
  ring_all_gather(port, rank, ranks, bytes, sum);
  return sum;
}

double ring_reduce_scatter(MessagePort& port, int rank, int ranks, std::int64_t bytes, double value) {
  if (ranks <= 1) return value;
  const int next = (rank + 1) % ranks, previous = (rank + ranks - 1) % ranks;
  const std::int64_t chunk = ring_chunk(ranks, bytes);
  double sum = value, carried = value;
  for (int step = 0; step < ranks - 1; ++step) {
    port.post(next, chunk, carried);
    carried = port.receive(previous, chunk);
    sum += carried;
  }
  return sum;
}

void ring_all_gather(MessagePort& port, int rank, int ranks, std::int64_t bytes, double value) {
  if (ranks <= 1) return;
  const int next = (rank + 1) % ranks, previous = (rank + ranks - 1) % ranks;
  const std::int64_t chunk = ring_chunk(ranks, bytes);
  for (int step = 0; step < ranks - 1; ++step) {
    port.post(next, chunk, value);
    port.receive(previous, chunk);
  }
}

AllreduceAlgorithm resolve(AllreduceAlgorithm algorithm, std::int64_t bytes, std::int64_t eager_limit_bytes) {
  if (algorithm != AllreduceAlgorithm::automatic) return algorithm;
  return eager_limit_bytes < 0 || bytes <= eager_limit_bytes ? AllreduceAlgorithm::recursive_doubling
                                                             : AllreduceAlgorithm::ring;
}

int index_in_group(std::span<const int> group, int rank) {
  const auto found = std::find(group.begin(), group.end(), rank);
  if (found == group.end()) throw Error("rank " + std::to_string(rank), "a collective's group does not hold this rank");
  return static_cast<int>(found - group.begin());
}

std::vector<int> allreduce_sources(int rank, int ranks) {
  if (ranks <= 1) return {};
  const Doubling d = doubling_of(ranks);
  std::set<int> sources{(rank + ranks - 1) % ranks};
  if (rank < 2 * d.extra) sources.insert(rank % 2 == 0 ? rank + 1 : rank - 1);
  if (const int me = d.new_rank(rank); me >= 0)
    for (int mask = 1; mask < d.power; mask <<= 1) sources.insert(d.old_rank(me ^ mask));
  return {sources.begin(), sources.end()};
}

}  // namespace detail
}  // namespace plait::simulator
