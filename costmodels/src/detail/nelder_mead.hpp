// Nelder-Mead minimisation of a smooth function of N parameters (the kernel
// model fits: on the log of each parameter, from a start half a unit wide).
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <numeric>

namespace plait::costmodels::detail {

template <std::size_t N>
std::array<double, N> nelder_mead(const std::function<double(const std::array<double, N>&)>& f, std::array<double, N> start) {
  using Point = std::array<double, N>;
  constexpr int parameter_count = static_cast<int>(N);
  std::array<Point, parameter_count + 1> simplex;
  std::array<double, parameter_count + 1> value;
  simplex.fill(start);
  for (int i = 0; i < parameter_count; ++i) simplex[i + 1][i] += 0.5;
  for (int i = 0; i <= parameter_count; ++i) value[i] = f(simplex[i]);
  for (int iteration = 0; iteration < 600; ++iteration) {
    std::array<int, parameter_count + 1> order;
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return value[a] < value[b]; });
    const int best = order.front(), worst = order.back(), second = order[parameter_count - 1];
    if (value[worst] - value[best] < 1e-10 * (1 + value[best])) break;
    Point centre{};
    for (int i : order)
      if (i != worst)
        for (int k = 0; k < parameter_count; ++k) centre[k] += simplex[i][k] / parameter_count;
    const auto along = [&](double t) {
      Point p;
      for (int k = 0; k < parameter_count; ++k) p[k] = centre[k] + t * (simplex[worst][k] - centre[k]);
      return p;
    };
    const Point reflected = along(-1);
    const double reflected_value = f(reflected);
    if (reflected_value < value[best]) {
      const Point expanded = along(-2);
      const double expanded_value = f(expanded);
      if (expanded_value < reflected_value) simplex[worst] = expanded, value[worst] = expanded_value;
      else simplex[worst] = reflected, value[worst] = reflected_value;
    } else if (reflected_value < value[second]) {
      simplex[worst] = reflected, value[worst] = reflected_value;
    } else {
      const Point contracted = along(0.5);
      const double contracted_value = f(contracted);
      if (contracted_value < value[worst]) {
        simplex[worst] = contracted, value[worst] = contracted_value;
      } else {
        for (int i = 0; i <= parameter_count; ++i) {
          if (i == best) continue;
          for (int k = 0; k < parameter_count; ++k) simplex[i][k] = simplex[best][k] + 0.5 * (simplex[i][k] - simplex[best][k]);
          value[i] = f(simplex[i]);
        }
      }
    }
  }
  return simplex[std::min_element(value.begin(), value.end()) - value.begin()];
}

}  // namespace plait::costmodels::detail
