// One standard error of each fitted log parameter, from the Jacobian of the
// log residuals at the optimum: sqrt(s^2 diag((J^T J)^-1)), s^2 the residual
// variance over the rows less the parameters (the kernel and inter-node fits).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

namespace plait::costmodels::detail {

// Diagonal of the inverse of `a` by Gauss-Jordan; NaN where singular.
template <std::size_t N>
std::array<double, N> inverse_diagonal(std::array<std::array<double, N>, N> a) {
  std::array<std::array<double, N>, N> inverse{};
  for (std::size_t i = 0; i < N; ++i) inverse[i][i] = 1;
  for (std::size_t i = 0; i < N; ++i) {
    std::size_t pivot = i;
    for (std::size_t r = i + 1; r < N; ++r)
      if (std::abs(a[r][i]) > std::abs(a[pivot][i])) pivot = r;
    std::swap(a[i], a[pivot]);
    std::swap(inverse[i], inverse[pivot]);
    if (std::abs(a[i][i]) < 1e-300) {
      std::array<double, N> nan;
      nan.fill(NAN);
      return nan;
    }
    const double scale = a[i][i];
    for (std::size_t k = 0; k < N; ++k) a[i][k] /= scale, inverse[i][k] /= scale;
    for (std::size_t r = 0; r < N; ++r) {
      if (r == i) continue;
      const double factor = a[r][i];
      for (std::size_t k = 0; k < N; ++k) a[r][k] -= factor * a[i][k], inverse[r][k] -= factor * inverse[i][k];
    }
  }
  std::array<double, N> diagonal;
  for (std::size_t i = 0; i < N; ++i) diagonal[i] = inverse[i][i];
  return diagonal;
}

// `residuals(x)`: each row's log(predicted / measured) at log parameters x.
template <std::size_t N>
std::array<double, N> relative_uncertainty(const std::function<std::vector<double>(const std::array<double, N>&)>& residuals,
                                           const std::array<double, N>& best) {
  const std::vector<double> at_best = residuals(best);
  constexpr double step = 1e-3;
  std::array<std::array<double, N>, N> normal{};
  std::vector<std::array<double, N>> jacobian(at_best.size());
  for (std::size_t k = 0; k < N; ++k) {
    std::array<double, N> moved = best;
    moved[k] += step;
    const std::vector<double> r = residuals(moved);
    for (std::size_t i = 0; i < at_best.size(); ++i) jacobian[i][k] = (r[i] - at_best[i]) / step;
  }
  for (const auto& row : jacobian)
    for (std::size_t a = 0; a < N; ++a)
      for (std::size_t b = 0; b < N; ++b) normal[a][b] += row[a] * row[b];
  const double squares = std::inner_product(at_best.begin(), at_best.end(), at_best.begin(), 0.0);
  const double variance = squares / double(std::max<std::size_t>(at_best.size() > N ? at_best.size() - N : 1, 1));
  const std::array<double, N> diagonal = inverse_diagonal<N>(normal);
  std::array<double, N> out;
  for (std::size_t k = 0; k < N; ++k) out[k] = std::sqrt(variance * diagonal[k]);
  return out;
}

}  // namespace plait::costmodels::detail
