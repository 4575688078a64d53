// Weighted least squares of t = alpha + beta * x on relative error, alpha, beta >= 0.
#pragma once

#include <span>
#include <utility>

namespace plait::costmodels::detail {

struct Line {
  double alpha = 0;
  double beta = 0;
};

// points: (x, t) with t > 0; minimises sum ((alpha + beta x - t) / t)^2.
Line fit_relative_line(std::span<const std::pair<double, double>> points);

}  // namespace plait::costmodels::detail
