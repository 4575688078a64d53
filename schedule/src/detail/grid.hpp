// The grid hierarchy of one phase, in phase coordinates, and its ownership.
//
// Phase coordinate s runs in solve order: the forward phase has s = forward
// point i; the adjoint phase runs backwards, s = N - i. Step s -> s+1 of the
// fine level is one block. Level l's points are a subset of level l-1's,
// always containing 0; its C-points are the points of level l+1.
#pragma once

#include <cstdint>
#include <vector>

#include "plait/schedule/build.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule::detail {

struct Grid {
  int layers = 0;
  bool adjoint = false;
  PhaseSpec spec;
  std::vector<std::vector<int>> points;       // [level][k] -> phase coordinate, ascending
  std::vector<std::vector<int>> fine_index;   // [level][k] -> index of the same point on level-1
  std::vector<std::vector<char>> is_c_point;  // [level][k] -> point is on level+1
  std::vector<int> block_owner;               // [block] -> rank holding its parameters
  std::vector<int> rank_order;                // ranks in phase order (first owns point 0)

  int levels() const { return static_cast<int>(points.size()); }
  int size(int level) const { return static_cast<int>(points[level].size()); }
  int forward_point(int s) const { return adjoint ? layers - s : s; }
  // A point belongs to the rank that computes the step reaching it: the rank
  // holding that step's block. Point 0 belongs to the first rank.
  int owner_of(int level, int k) const {
    return k == 0 ? rank_order.front() : block_owner[block(level, k)];
  }

  // The step arriving at point k of `level`: fine steps spanned, and the fine
  // block whose parameters (and, in the adjoint, forward state) it uses: the
  // lower forward end of the interval, so a coarse step uses its first block.
  int span(int level, int k) const { return points[level][k] - points[level][k - 1]; }
  int block(int level, int k) const {
    return adjoint ? layers - points[level][k] : points[level][k - 1];
  }
};

// partition[r] .. partition[r+1]: blocks of rank r (forward coordinates).
// Throws plait::Error when there are more ranks than layers.
std::vector<std::int32_t> make_partition(const BuildSpec& spec);

Grid make_grid(int layers, const PhaseSpec& spec, bool adjoint,
               const std::vector<std::int32_t>& partition);

}  // namespace plait::schedule::detail
