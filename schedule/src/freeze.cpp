// PipeTransformer's freezing (Hu et al. 2021): frozen blocks run forward only,
// so a pipeline balances stages by work, not by blocks, and once enough blocks
// are frozen the rest fit on fewer stages: the freed devices become replicas.
#include "detail/freeze.hpp"

#include <algorithm>
#include <set>

namespace plait::schedule {
namespace {

// Work units of a block step: a trained block runs a forward (1) and a backward
// of about twice its FLOPs (2); a frozen block the forward only.
constexpr std::int64_t trained_units = 3, frozen_units = 1;

std::int64_t work_units(std::int64_t layers, std::int64_t frozen) {
  return frozen * frozen_units + (layers - frozen) * trained_units;
}

}  // namespace

namespace detail {

std::vector<std::int32_t> balanced_partition(std::int32_t layers, std::int32_t chunks, std::int32_t frozen) {
  // Chunk c ends at the last block whose work before it is at most c / chunks
  // of the total (the even split when nothing is frozen), each chunk one block at least.
  const std::int64_t total = work_units(layers, frozen);
  std::vector<std::int32_t> partition{0};
  std::int32_t end = 0;
  for (std::int64_t chunk = 1; chunk < chunks; ++chunk) {
    while (end < layers && work_units(end + 1, std::min(end + 1, frozen)) * chunks <= chunk * total) ++end;
    end = std::clamp<std::int32_t>(end, partition.back() + 1, static_cast<std::int32_t>(layers - (chunks - chunk)));
    partition.push_back(end);
  }
  partition.push_back(layers);
  return partition;
}

}  // namespace detail

BuildSpec repacked(const BuildSpec& spec) {
  BuildSpec out = spec;
  out.repack = false;
  const std::int64_t layers = spec.layers, stages = spec.ranks, frozen = spec.frozen_blocks;
  if (frozen <= 0 || stages <= 1) return out;
  // The fewest stages (a divisor of the stages, so replicas stay whole) that
  // hold no more work each than the unfrozen pipeline's stages did.
  std::set<std::int64_t> divisors;  // up to 2 sqrt(stages) of them
  for (std::int64_t d = 1; d * d <= stages; ++d)
    if (stages % d == 0) divisors.insert({d, stages / d});
  for (const std::int64_t fewer : divisors) {
    if (fewer == stages || work_units(layers, frozen) * stages > work_units(layers, 0) * fewer) continue;
    const std::int64_t replicas = std::int64_t{spec.replicas} * (stages / fewer);
    if (spec.model.batch % (replicas * std::max(spec.micro_batches, 1)) != 0) continue;
    out.ranks = static_cast<std::int32_t>(fewer);
    out.replicas = static_cast<std::int32_t>(replicas);
    return out;
  }
  return out;
}

}  // namespace plait::schedule
