// Freezing blocks (freeze.cpp): partitions by work and PipeTransformer's re-pack.
#pragma once

#include <cstdint>
#include <vector>

#include "plait/schedule/build.hpp"

namespace plait::schedule::detail {

// `chunks` contiguous chunks of `layers` blocks of about equal work, the first
// `frozen` blocks a third of a trained one's (forward only); with none frozen,
// the even split (later chunks a block more where chunks do not divide layers).
std::vector<std::int32_t> balanced_partition(std::int32_t layers, std::int32_t chunks, std::int32_t frozen);

}  // namespace plait::schedule::detail
