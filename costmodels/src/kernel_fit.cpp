// The GPU kernel model fitted to measured steps, and its k-fold check.
//
// Five parameters on top of a sheet's peak FLOP/s and bandwidth: the
// efficiency every kernel reaches, the GEMM dimension at which a GEMM gets
// half of it, the fraction of it memory-bound kernels get, the host's time
// to launch a kernel, and its time on each stage-to-stage message. A step's
// estimate is monotone but not linear in them (the roofline's max, the
// saturation, launches against kernels), so Nelder-Mead minimises the squared
// log ratio of predicted to measured over the log of each parameter. Then,
// with those fixed, each shape's block and ends factors (fit_shape_factors).
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <tuple>

#include "detail/fit_uncertainty.hpp"
#include "detail/nelder_mead.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

constexpr int parameter_count = 5;
using Point = std::array<double, parameter_count>;  // logs of the parameters

DeviceSheet sheet_at(const DeviceSheet& sheet, const Point& x) {
  DeviceSheet device = sheet;
  device.efficiency = std::exp(x[0]);
  device.gemm_half_dim = std::exp(x[1]);
  device.memory_efficiency = std::exp(x[2]);
  device.kernel_overhead_s = std::exp(x[3]);
  device.message_overhead_s = std::exp(x[4]);
  return device;
}

Point point_of(const DeviceSheet& device) {
  return {std::log(device.efficiency), std::log(device.gemm_half_dim), std::log(device.memory_efficiency),
          std::log(device.kernel_overhead_s), std::log(device.message_overhead_s)};
}

// log(predicted / measured) of each of `rows`.
std::vector<double> residuals(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                              const std::vector<std::size_t>& rows, const OpPricer& pricer, const StepLinks& links) {
  std::vector<double> out;
  out.reserve(rows.size());
  for (std::size_t row : rows) out.push_back(std::log(estimators[row].seconds(pricer, links) / steps[row].seconds));
  return out;
}

std::vector<double> residuals(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                              const std::vector<std::size_t>& rows, const DeviceSheet& device,
                              const StepLinks& links) {
  return residuals(steps, estimators, rows, *make_analytic_pricer(device), links);
}

double cost(const std::vector<double>& r) {
  return std::inner_product(r.begin(), r.end(), r.begin(), 0.0);
}

// `rows` grouped by the micro-batch shape their steps are priced at, in order of first appearance.
std::vector<std::pair<schedule::ModelDesc, std::vector<std::size_t>>> rows_by_shape(
    const std::vector<StepEstimator>& estimators, const std::vector<std::size_t>& rows) {
  std::vector<std::pair<schedule::ModelDesc, std::vector<std::size_t>>> shapes;
  for (std::size_t row : rows) {
    const schedule::ModelDesc shape = estimators[row].shape();
    auto found = std::find_if(shapes.begin(), shapes.end(), [&](const auto& s) { return same_shape(s.first, shape); });
    if (found == shapes.end()) found = shapes.insert(shapes.end(), {shape, {}});
    found->second.push_back(row);
  }
  return shapes;
}

// The second stage, with the smooth parameters fixed: each micro-batch shape
// of at least min_shape_rows rows gets its block and ends factors (their logs
// by Gauss-Newton on that shape's rows), each log with a normal prior of
// standard deviation factor_prior_sd around 0 against the smooth model's
// residual variance (it decides where a shape's rows cannot tell its blocks
// from its ends).
constexpr std::size_t min_shape_rows = 3;
constexpr double factor_prior_sd = 0.5;

std::vector<ShapeFactors> fit_shape_factors(const std::vector<StepMeasurement>& steps,
                                            const std::vector<StepEstimator>& estimators,
                                            const std::vector<std::size_t>& rows, const DeviceSheet& device,
                                            const StepLinks& links, double residual_variance) {
  const double prior = std::max(residual_variance, 1e-8) / (factor_prior_sd * factor_prior_sd);
  std::vector<ShapeFactors> out;
  for (const auto& [shape, shape_rows] : rows_by_shape(estimators, rows)) {
    if (shape_rows.size() < min_shape_rows) continue;
    const auto at = [&](double log_block, double log_ends) {
      const auto pricer = make_analytic_pricer(device, {{shape, std::exp(log_block), std::exp(log_ends)}});
      return residuals(steps, estimators, shape_rows, *pricer, links);
    };
    double x[2] = {0, 0};
    for (int iteration = 0; iteration < 10; ++iteration) {
      const std::vector<double> r = at(x[0], x[1]);
      constexpr double h = 1e-4;
      const std::vector<double> moved[2] = {at(x[0] + h, x[1]), at(x[0], x[1] + h)};
      double a[2][2] = {{prior, 0}, {0, prior}}, g[2] = {prior * x[0], prior * x[1]};
      for (std::size_t i = 0; i < r.size(); ++i) {
        const double j[2] = {(moved[0][i] - r[i]) / h, (moved[1][i] - r[i]) / h};
        for (int p = 0; p < 2; ++p) {
          g[p] += j[p] * r[i];
          for (int q = 0; q < 2; ++q) a[p][q] += j[p] * j[q];
        }
      }
      const double det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
      const double step[2] = {-(a[1][1] * g[0] - a[0][1] * g[1]) / det, -(a[0][0] * g[1] - a[1][0] * g[0]) / det};
      x[0] += step[0], x[1] += step[1];
      if (std::abs(step[0]) + std::abs(step[1]) < 1e-6) break;
    }
    out.push_back({shape, std::exp(x[0]), std::exp(x[1]), int(shape_rows.size())});
  }
  const auto order = [](const ShapeFactors& f) {
    return std::tuple(f.shape.tensor_parallel, f.shape.batch, f.shape.d_model, f.shape.heads, f.shape.seq, f.shape.vocab);
  };
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return order(a) < order(b); });
  return out;
}

KernelFit fit_rows(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                   const std::vector<std::size_t>& rows, const DeviceSheet& sheet, const StepLinks& links) {
  if (rows.size() < parameter_count)
    throw Error("step fit", std::to_string(rows.size()) + " measured steps: at least " + std::to_string(parameter_count) +
                                " are needed for " + std::to_string(parameter_count) + " parameters");
  // A data-independent start: half the peak, GEMMs at half speed at 64, HBM
  // at 70 %, 20 us to launch a kernel, 100 us a message.
  DeviceSheet start = sheet;
  start.efficiency = 0.5, start.gemm_half_dim = 64, start.memory_efficiency = 0.7, start.kernel_overhead_s = 20e-6;
  start.message_overhead_s = 100e-6;
  const auto at = [&](const Point& x) { return residuals(steps, estimators, rows, sheet_at(sheet, x), links); };
  const auto objective = [&](const Point& x) { return cost(at(x)); };
  Point best = detail::nelder_mead<parameter_count>(objective, point_of(start));
  best = detail::nelder_mead<parameter_count>(objective, best);  // a restart leaves a collapsed simplex
  KernelFit fit;
  fit.device = sheet_at(sheet, best);
  fit.rows = int(rows.size());
  const std::vector<double> at_best = at(best);
  for (double r : at_best) fit.mean_abs_error += std::abs(std::expm1(r)) / double(rows.size());
  fit.relative_uncertainty = detail::relative_uncertainty<parameter_count>(at, best);
  fit.smooth_mean_abs_error = fit.mean_abs_error;
  fit.shape_factors = fit_shape_factors(steps, estimators, rows, fit.device, links, cost(at_best) / double(rows.size()));
  fit.mean_abs_error = 0;
  for (double r : residuals(steps, estimators, rows, *fit.pricer(), links))
    fit.mean_abs_error += std::abs(std::expm1(r)) / double(rows.size());
  return fit;
}

}  // namespace

KernelFit fit_kernel_model(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                           const DeviceSheet& sheet, const StepLinks& links) {
  if (steps.size() != estimators.size()) throw Error("step fit", "one estimator a step is needed");
  std::vector<std::size_t> rows(steps.size());
  std::iota(rows.begin(), rows.end(), 0);
  return fit_rows(steps, estimators, rows, sheet, links);
}

std::vector<double> cross_validate(const std::vector<StepMeasurement>& steps,
                                   const std::vector<StepEstimator>& estimators, const DeviceSheet& sheet,
                                   const StepLinks& links, int folds, FoldBy by, unsigned seed) {
  // Dealt are the rows, or the distinct shapes (each with all its rows).
  std::vector<std::size_t> all(steps.size());
  std::iota(all.begin(), all.end(), 0);
  std::vector<int> unit(steps.size());
  std::iota(unit.begin(), unit.end(), 0);
  std::size_t units = steps.size();
  if (by == FoldBy::shape) {
    const auto shapes = rows_by_shape(estimators, all);
    for (std::size_t k = 0; k < shapes.size(); ++k)
      for (std::size_t row : shapes[k].second) unit[row] = int(k);
    units = shapes.size();
  }
  if (folds < 2 || std::size_t(folds) > units)
    throw Error("folds", std::to_string(folds) + " folds of " + std::to_string(units) +
                             (by == FoldBy::row ? " steps" : " shapes"));
  std::vector<int> order(units);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  std::vector<int> fold_of(units);
  for (std::size_t i = 0; i < units; ++i) fold_of[order[i]] = int(i % folds);
  std::vector<double> predicted(steps.size(), 0);
  for (int fold = 0; fold < folds; ++fold) {
    std::vector<std::size_t> train, test;
    for (std::size_t row = 0; row < steps.size(); ++row) (fold_of[unit[row]] == fold ? test : train).push_back(row);
    const auto pricer = fit_rows(steps, estimators, train, sheet, links).pricer();
    for (std::size_t row : test) predicted[row] = estimators[row].seconds(*pricer, links);
  }
  return predicted;
}

}  // namespace plait::costmodels
