// The inter-node links fitted to multi-node steps (inter_node_fit.hpp).
//
// Three parameters: a node's NIC bandwidth, the latency of an inter-node step
// and each cross-node collective's own overhead. The kernel model stays as the
// single-node steps fitted it, so what the multi-node rows add is priced by
// these alone. Least absolute deviations, not squares: a measured row that
// no smooth model reaches (an allocator at the edge of the device's memory, a
// slow node) moves the fit less.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "detail/fit_uncertainty.hpp"
#include "detail/nelder_mead.hpp"
#include "plait/costmodels/inter_node_fit.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

constexpr std::size_t parameter_count = 3;
using Point = std::array<double, parameter_count>;  // logs of bandwidth, latency, overhead

// Latency and overhead may be too small for the steps to see: they stop at
// a tenth of a microsecond (their uncertainty then says so).
constexpr double least_seconds = 1e-7;

StepLinks links_at(StepLinks links, const Point& x) {
  links.cluster->inter = {.node_bytes_per_s = std::exp(x[0]),
                          .latency_s = std::max(std::exp(x[1]), least_seconds),
                          .collective_overhead_s = std::max(std::exp(x[2]), least_seconds)};
  return links;
}

}  // namespace

InterNodeFit fit_inter_node(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                            const std::vector<std::size_t>& rows, const OpPricer& pricer, const StepLinks& links) {
  if (!links.cluster) throw Error("inter-node fit", "needs the cluster's nodes (StepLinks::cluster)");
  if (rows.size() < parameter_count)
    throw Error("inter-node fit", std::to_string(rows.size()) + " steps across nodes: at least " +
                                      std::to_string(parameter_count) + " are needed for its " +
                                      std::to_string(parameter_count) + " parameters");
  const InterNodeLinks& start = links.cluster->inter;
  if (!(start.node_bytes_per_s > 0)) throw Error("inter-node fit", "the starting bandwidth must be > 0");
  const auto residuals = [&](const Point& x) {
    const StepLinks at = links_at(links, x);
    std::vector<double> out;
    out.reserve(rows.size());
    for (std::size_t row : rows) out.push_back(std::log(estimators[row].seconds(pricer, at) / steps[row].seconds));
    return out;
  };
  const auto objective = [&](const Point& x) {
    double sum = 0;
    for (double r : residuals(x)) sum += std::abs(r);
    return sum;
  };
  // Zero latency or overhead have no log: start them at a microsecond.
  Point best = {std::log(start.node_bytes_per_s), std::log(std::max(start.latency_s, 1e-6)),
                std::log(std::max(start.collective_overhead_s, 1e-6))};
  for (int restart = 0; restart < 3; ++restart) best = detail::nelder_mead<parameter_count>(objective, best);
  for (std::size_t k = 1; k < parameter_count; ++k) best[k] = std::max(best[k], std::log(least_seconds));
  InterNodeFit fit;
  fit.links = links_at(links, best).cluster->inter;
  fit.rows = int(rows.size());
  for (double r : residuals(best)) {
    fit.mean_abs_error += std::abs(std::expm1(r)) / double(rows.size());
    fit.max_abs_error = std::max(fit.max_abs_error, std::abs(std::expm1(r)));
  }
  fit.relative_uncertainty = detail::relative_uncertainty<parameter_count>(residuals, best);
  return fit;
}

std::string model_of(const StepMeasurement& step) {
  return "hidden " + std::to_string(step.hidden) + ", " + std::to_string(step.heads) + " heads, " +
         std::to_string(step.layers) + " layers";
}

std::size_t model_count(const std::vector<StepMeasurement>& steps, const std::vector<std::size_t>& rows) {
  std::set<std::string> models;
  for (std::size_t row : rows) models.insert(model_of(steps[row]));
  return models.size();
}

std::vector<double> leave_one_model_out(const std::vector<StepMeasurement>& steps,
                                        const std::vector<StepEstimator>& estimators,
                                        const std::vector<std::size_t>& rows, const OpPricer& pricer,
                                        const StepLinks& links) {
  std::map<std::string, std::vector<std::size_t>> by_model;
  for (std::size_t row : rows) by_model[model_of(steps[row])].push_back(row);
  if (by_model.size() < 2)
    throw Error("leave one model out", "the steps across nodes hold " + std::to_string(by_model.size()) +
                                           " model: at least two are needed");
  std::vector<double> predicted(steps.size(), 0);
  for (const auto& [model, held_out] : by_model) {
    std::vector<std::size_t> train;
    for (std::size_t row : rows)
      if (model_of(steps[row]) != model) train.push_back(row);
    StepLinks fitted = links;
    fitted.cluster->inter = fit_inter_node(steps, estimators, train, pricer, links).links;
    for (std::size_t row : held_out) predicted[row] = estimators[row].seconds(pricer, fitted);
  }
  return predicted;
}

}  // namespace plait::costmodels
