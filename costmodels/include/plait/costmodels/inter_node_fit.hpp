// The inter-node links of a cluster fitted to measured multi-node steps,
// the GPU kernel model held fixed (fitted on one node's steps): `plait
// calibrate --from-steps` given rows that span nodes.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "plait/costmodels/cluster_links.hpp"
#include "plait/costmodels/steps.hpp"

namespace plait::costmodels {

struct InterNodeFit {
  InterNodeLinks links;
  // One standard error of each, relative to it (bandwidth, latency, collective
  // overhead); infinite or NaN for one the steps do not tell (at its floor of 0.1 us).
  std::array<double, 3> relative_uncertainty{};
  double mean_abs_error = 0, max_abs_error = 0;  // on the rows fitted
  int rows = 0;
};

// Least absolute log(predicted / measured) over `rows` of the steps
// (Nelder-Mead on the log of each parameter, from `links.cluster->inter`),
// estimators[i] pricing steps[i] with `pricer`. `links.cluster` must be set.
// Throws plait::Error with fewer rows than parameters (3).
InterNodeFit fit_inter_node(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                            const std::vector<std::size_t>& rows, const OpPricer& pricer, const StepLinks& links);

// A model's rows: the same hidden size, heads and layers.
std::string model_of(const StepMeasurement& step);

// How many models (model_of) `rows` hold.
std::size_t model_count(const std::vector<StepMeasurement>& steps, const std::vector<std::size_t>& rows);

// Leave one model out: each model's rows among `rows` predicted (seconds,
// indexed like steps; 0 for rows not among `rows`) by the fit on the other
// models' rows. Throws plait::Error with fewer than two models.
std::vector<double> leave_one_model_out(const std::vector<StepMeasurement>& steps,
                                        const std::vector<StepEstimator>& estimators,
                                        const std::vector<std::size_t>& rows, const OpPricer& pricer,
                                        const StepLinks& links);

// Markdown: the fitted links beside `sheet` (where the fit started) with
// their uncertainty and what they mean, the error by TP, PP, DP, micro batch
// and GPUs of the fit on every row and of the leave-one-model-out check side
// by side, and every row. `steps` are the rows across nodes; `fitted` and
// `left_out` their predicted seconds (`left_out` empty: one model, no check).
std::string format_inter_node_fit(const std::vector<StepMeasurement>& steps, const InterNodeFit& fit,
                                  const InterNodeLinks& sheet, const std::vector<double>& fitted,
                                  const std::vector<double>& left_out);

}  // namespace plait::costmodels
