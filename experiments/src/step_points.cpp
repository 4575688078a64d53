// Sweep points from a CSV of measured steps: each row the Megatron GPT step it
// ran (costmodels::megatron_step_spec, the Program calibrate --from-steps fits).
#include "detail/points.hpp"
#include "plait/costmodels/steps.hpp"

namespace plait::experiments::detail {

std::vector<std::pair<PointConfig, double>> step_points(const std::string& csv_path, int vocab, const PointConfig& base) {
  std::vector<std::pair<PointConfig, double>> points;
  for (const costmodels::StepMeasurement& step : costmodels::load_step_csv(csv_path)) {
    const schedule::BuildSpec spec = costmodels::megatron_step_spec(step, vocab);
    PointConfig point;
    point.kind = costmodels::megatron_step_kind;
    point.platform = base.platform;
    point.layers = spec.layers;
    point.ranks = spec.ranks;
    point.dp = spec.replicas;
    point.micro_batches = spec.micro_batches;
    point.recompute = spec.recompute;
    point.selective_recompute = spec.model.selective_recompute;
    point.sequence_parallel = spec.model.sequence_parallel;
    point.zero = spec.zero_stage;
    point.tp = spec.model.tensor_parallel;
    point.vocab = spec.model.vocab;
    point.model = {.d_model = spec.model.d_model, .heads = spec.model.heads, .seq = spec.model.seq,
                   .batch = spec.model.batch, .dtype = spec.model.dtype};
    point.mask = spec.model.causal ? "causal" : "none";
    point.source = csv_path + ":" + std::to_string(step.line);
    points.emplace_back(std::move(point), step.seconds);
  }
  return points;
}

}  // namespace plait::experiments::detail
