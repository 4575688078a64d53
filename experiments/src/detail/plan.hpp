// The pieces of `plait plan` (plan.hpp): the search space, the fast estimate,
// MGRIT's gradient error on a proxy, SimGrid on the best.
#pragma once

#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "plait/costmodels/costmodels.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/experiments/plan.hpp"
#include "plait/schedule/build.hpp"

namespace plait::experiments::detail {

// Every split of `gpus` devices (plan_candidates.cpp): tensor parallelism within
// a node dividing the heads, pipeline stages (uneven splits allowed), data
// parallelism dividing the batch, micro-batches, the kinds' own settings
// (interleaving's chunks, MGRIT's levels, cf and iterations), recompute.
std::vector<Candidate> enumerate_candidates(const PlanRequest& request, int gpus);

// The Program of one candidate's replica with `micro_batches` micro-batches of
// its size (MGRIT: one accumulation round, whatever `micro_batches`), and with
// `replicas` of them.
schedule::BuildSpec candidate_spec(const PlanRequest& request, const Candidate& candidate, int micro_batches,
                                   int replicas);
// Micro-batches of the whole step per replica (MGRIT: accumulation rounds).
int step_micro_batches(const PlanRequest& request, const Candidate& candidate);
// Fewer micro-batches whose Programs give the step's time and memory by
// extrapolation (affine in micro-batches past the pipeline's warm-up), or the
// step's own count twice when it is small.
std::pair<int, int> probe_micro_batches(const PlanRequest& request, const Candidate& candidate);
// value at `m` from values at probes m1 < m2 (equal probes: the value itself).
double extrapolate(std::pair<int, int> probes, double at_first, double at_second, int m);

// The fast tier (plan_estimate.cpp): step seconds and the fullest rank's
// memory of one replica, cached by everything but the data parallelism.
// Thread-safe: a probe is made once, the threads that need it meanwhile wait.
class PlanEstimator {
 public:
  PlanEstimator(const PlanRequest& request, std::unique_ptr<costmodels::OpPricer> pricer);
  void estimate(Candidate& candidate);
  // How the candidate's messages and collectives are priced.
  costmodels::StepLinks links_for(const Candidate& candidate) const;
  // The replicas' gradient sum of `bytes` a device, as `links` price it.
  double gradient_sum_seconds(const Candidate& candidate, const costmodels::StepLinks& links, double bytes) const;

 private:
  struct Probe {
    double seconds[2]{};
    double memory[2]{};
    double gradient_bytes = 0;  // the fullest rank's gradients, summed over the replicas
  };
  Probe probe(const Candidate& candidate);
  Probe make_probe(const Candidate& candidate) const;

  const PlanRequest& request_;
  std::unique_ptr<costmodels::OpPricer> pricer_;
  std::mutex mutex_;
  std::map<std::string, std::shared_future<Probe>> probes_;
};

// MGRIT's relative gradient error (plan_gradient_error.cpp), cached by setting.
struct GradientError {
  double worst = 0, spread = 0;
};
class GradientErrors {  // thread-safe
 public:
  GradientError of(const Candidate& candidate, int layers);

 private:
  std::mutex mutex_;
  std::map<std::tuple<int, int, int, int, int>, GradientError> cache_;
};

}  // namespace plait::experiments::detail
