// The MGRIT grid of a phase and the ranks' contiguous block ranges (detail/grid.hpp).
#include <algorithm>
#include <numeric>
#include <utility>

#include "detail/grid.hpp"
#include "plait/schedule/error.hpp"

namespace plait::schedule::detail {

Grid make_grid(int layers, const PhaseSpec& spec, bool adjoint,
               const std::vector<std::int32_t>& partition) {
  Grid grid;
  grid.layers = layers;
  grid.adjoint = adjoint;
  grid.spec = spec;
  // Level l's points are the forward points k*cf^l (and, in the adjoint, the
  // start point N); the last interval may be shorter.
  std::int64_t stride = 1;
  for (int level = 0; level < spec.levels; ++level) {
    std::vector<int> points;
    for (std::int64_t forward = 0; forward <= layers; forward += stride) {
      points.push_back(adjoint ? layers - static_cast<int>(forward) : static_cast<int>(forward));
    }
    if (adjoint && points.back() != 0) points.push_back(0);
    std::sort(points.begin(), points.end());
    grid.points.push_back(std::move(points));
    stride *= spec.coarsening_factor;
  }
  for (int level = 0; level < spec.levels; ++level) {
    const auto& fine = level > 0 ? grid.points[level - 1] : grid.points[0];
    std::vector<int> index(grid.points[level].size());
    std::size_t j = 0;
    for (std::size_t k = 0; k < index.size(); ++k) {
      while (fine[j] != grid.points[level][k]) ++j;
      index[k] = static_cast<int>(j);
    }
    grid.fine_index.push_back(std::move(index));
  }
  for (int level = 0; level < spec.levels; ++level) {
    std::vector<char> c_point(grid.points[level].size(), 0);
    if (level + 1 < spec.levels) {
      for (int k : grid.fine_index[level + 1]) c_point[k] = 1;
    }
    grid.is_c_point.push_back(std::move(c_point));
  }
  const int ranks = static_cast<int>(partition.size()) - 1;
  grid.block_owner.assign(layers, 0);
  for (int rank = 0; rank < ranks; ++rank) {
    for (int block = partition[rank]; block < partition[rank + 1]; ++block) grid.block_owner[block] = rank;
    grid.rank_order.push_back(adjoint ? ranks - 1 - rank : rank);
  }
  return grid;
}

// Ranks split the blocks into contiguous ranges cut at multiples of the
// largest grid stride (common to both phases) that still leaves every rank a
// range: at the coarsest stride no coarse interval straddles two ranks, so
// relaxation needs one neighbour value per sweep; with more ranks than coarsest
// intervals, coarse levels live on fewer ranks and their sweeps pipeline
// across the ranks of an interval, as in XBraid.
std::vector<std::int32_t> make_partition(const BuildSpec& spec) {
  if (spec.ranks > spec.layers) {
    throw Error("ranks", std::to_string(spec.ranks) + " ranks but only " + std::to_string(spec.layers) +
                             " layers: every rank needs at least one layer");
  }
  const auto stride = [](const PhaseSpec& phase, int level) {
    std::int64_t out = 1;
    for (int l = 0; l < std::min(level, phase.levels - 1); ++l) out *= phase.coarsening_factor;
    return out;
  };
  std::int64_t unit = 1;
  for (int level = std::max(spec.forward.levels, spec.adjoint.levels) - 1; level >= 0; --level) {
    unit = std::lcm(stride(spec.forward, level), stride(spec.adjoint, level));
    if ((spec.layers + unit - 1) / unit >= spec.ranks) break;
  }
  const std::int64_t units = (spec.layers + unit - 1) / unit;
  std::vector<std::int32_t> partition{0};
  for (int rank = 0; rank < spec.ranks; ++rank) {
    const std::int64_t end_unit = units * (rank + 1) / spec.ranks;
    partition.push_back(static_cast<std::int32_t>(std::min<std::int64_t>(end_unit * unit, spec.layers)));
  }
  return partition;
}

}  // namespace plait::schedule::detail
