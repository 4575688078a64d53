#include "detail/line_fit.hpp"

#include <cmath>

namespace plait::costmodels::detail {

Line fit_relative_line(std::span<const std::pair<double, double>> points) {
  double sw = 0, swx = 0, swxx = 0, swt = 0, swxt = 0;
  for (const auto& [x, t] : points) {
    const double w = 1.0 / (t * t);
    sw += w, swx += w * x, swxx += w * x * x, swt += w * t, swxt += w * x * t;
  }
  const double det = sw * swxx - swx * swx;
  // Relative to the scale of the terms: below this the points share one x.
  const bool solvable = std::isfinite(det) && det > 1e-12 * sw * swxx;
  Line line;
  if (solvable) {
    line.alpha = (swt * swxx - swx * swxt) / det;
    line.beta = (sw * swxt - swx * swt) / det;
  }
  if (!solvable || line.alpha < 0) line = {0, swxx > 0 ? swxt / swxx : 0};  // through the origin
  if (line.beta < 0 || (line.beta == 0 && line.alpha == 0)) line = {swt / sw, 0};  // constant
  return line;
}

}  // namespace plait::costmodels::detail
