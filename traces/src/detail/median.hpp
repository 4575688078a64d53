// The median of a few values (0 for none): clock offsets, collective transfers.
#pragma once

#include <algorithm>
#include <vector>

namespace plait::traces::detail {

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace plait::traces::detail
