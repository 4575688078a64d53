// Building, predicting and measuring one sweep point.
#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/points.hpp"
#include "detail/steadiness.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments::detail {
namespace {

double number_field(const nlohmann::json& value, const char* key, const std::string& origin) {
  if (!value.contains(key) || !value.at(key).is_number())
    throw Error(origin, std::string("has no number \"") + key + "\"");
  return value.at(key).get<double>();
}

// The last JSON object a child printed (plait run may print lines before it).
nlohmann::json read_json_output(const std::string& path) {
  const std::string text = read_text_file(path);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    const auto start = text.rfind("\n{");
    if (start != std::string::npos) value = nlohmann::json::parse(text.substr(start + 1), nullptr, false);
  }
  if (value.is_discarded() || !value.is_object()) throw Error(path, "output is not a JSON object");
  return value;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void run_or_throw(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
                  const std::string& what) {
  const int code = run_process(argv, out, err);
  if (code != 0)
    throw Error(what, "exit " + std::to_string(code) + ": " + last_words(err) + " [" + join_command(argv) + "]");
}

}  // namespace

schedule::ModelDesc point_model(const PointConfig& c) {
  schedule::ModelDesc model;
  model.kind = "transformer";
  model.d_model = c.model.d_model;
  model.heads = c.model.heads;
  model.seq = c.model.seq;
  model.batch = c.model.batch;
  model.mlp_ratio = c.model.mlp_ratio;
  model.dtype = c.model.dtype;
  model.causal = c.mask == "causal";
  model.tensor_parallel = c.tp;
  model.vocab = c.vocab;
  model.buffer_blocks = c.buffer_blocks;
  return model;
}

schedule::BuildSpec point_build_spec(const PointConfig& c) {
  schedule::BuildSpec spec;
  spec.layers = c.layers;
  spec.ranks = c.ranks;
  spec.micro_batches = c.micro_batches;
  spec.replicas = c.dp;
  spec.dp_overlap = c.dp_overlap;
  spec.dp_per_tensor = c.dp_allreduce == "per-tensor";
  spec.ends_on_first_rank = c.ends == "first-rank";
  spec.virtual_stages = c.virtual_stages;
  spec.frozen_blocks = c.frozen;  // a re-packed point's ranks and dp are re-packed already
  spec.recompute = c.recompute;
  const schedule::Relax relax = schedule::parse_relax(c.relax);
  spec.forward = {.levels = c.fwd_levels > 0 ? c.fwd_levels : c.levels, .coarsening_factor = c.cf, .relax = relax,
                  .iterations = c.fwd_iters};
  spec.adjoint = {.levels = c.levels, .coarsening_factor = c.cf, .relax = relax, .iterations = c.bwd_iters};
  spec.model = point_model(c);
  spec.model.selective_recompute = c.selective_recompute;
  spec.model.sequence_parallel = c.sequence_parallel;
  spec.zero_stage = c.zero;
  spec.prefetch = c.zero == 3;
  return spec;
}

schedule::Program build_point_program(const PointConfig& c) { return schedule::build_kind(c.kind, point_build_spec(c)); }

schedule::ModelDesc point_op_model(const PointConfig& c) {
  schedule::Program shape;  // the split of the batch, without building the ops
  shape.model = point_model(c);
  shape.micro_batches = c.micro_batches;
  shape.replicas = c.dp;
  return schedule::micro_batch_model(shape);
}

namespace {

// `plait simulate --json` of the point's Program into point_dir/<name>.json.
nlohmann::json simulate(const Tools& tools, const std::string& point_dir, const PointConfig& config,
                        const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {tools.plait, "simulate", point_dir + "/program.json", "--platform",
                                   config.platform, "--grow-nodes", "--json"};
  if (!tools.profile.empty()) argv.insert(argv.end(), {"--profile", tools.profile});
  if (config.allreduce != "auto") argv.insert(argv.end(), {"--allreduce", config.allreduce});
  argv.insert(argv.end(), extra.begin(), extra.end());
  const std::string out = point_dir + "/" + name + ".json";
  run_or_throw(argv, out, point_dir + "/" + name + ".stderr", "plait simulate");
  return read_json_output(out);
}

}  // namespace

void predict_point(const Tools& tools, const std::string& point_dir, PointResult& result) {
  const nlohmann::json prediction = simulate(tools, point_dir, result.config, "prediction", {});
  const std::string origin = point_dir + "/prediction.json";
  result.predicted_time_s = number_field(prediction, "predicted_time_s", origin);
  result.predicted_serial_s = number_field(prediction, "serial_predicted_time_s", origin);
  result.predicted_speedup = number_field(prediction, "speedup", origin);
  if (prediction.contains("critical_path") && prediction.at("critical_path").contains("compute_s"))
    result.critical_compute_s = number_field(prediction.at("critical_path"), "compute_s", origin);
}

namespace {

std::string comma_separated(const std::vector<double>& values) {
  std::ostringstream text;
  text.precision(6);
  for (std::size_t i = 0; i < values.size(); ++i) text << (i ? "," : "") << values[i];
  return text.str();
}

}  // namespace

double paired_prediction(const std::vector<double>& measured_s, const std::vector<double>& predicted_s) {
  if (measured_s.empty() || measured_s.size() != predicted_s.size())
    throw Error("paired prediction", std::to_string(measured_s.size()) + " measured runs and " +
                                         std::to_string(predicted_s.size()) + " predictions");
  std::vector<double> ratios;
  for (std::size_t run = 0; run < measured_s.size(); ++run) ratios.push_back(predicted_s[run] / measured_s[run]);
  return median(measured_s) * median(ratios);
}

namespace {

// The speed references of a point's shape, when the point is probed: of its
// rank count for its steps, of one rank for the serial step (it runs alone).
struct SpeedReferences {
  double steps_s = 0, serial_s = 0;
};

std::optional<SpeedReferences> speed_references(const Tools& tools, const MeasureSpec& measure,
                                                const PointConfig& config) {
  if (!measure.speed_probe || tools.profile.empty()) return std::nullopt;
  const costmodels::Profile profile = costmodels::load_profile(tools.profile);
  // A pipeline's steps run on a micro-batch, its serial step on the whole batch.
  const costmodels::SpeedReference* steps = profile.find_speed_reference(point_op_model(config));
  const costmodels::SpeedReference* serial = profile.find_speed_reference(point_model(config));
  if (!steps || !serial) return std::nullopt;
  return SpeedReferences{devices(config) == 1 ? steps->alone_s : steps->contended_s, serial->alone_s};
}

// Run `run`'s report (plait run --json), and with extension ".stderr" its stderr.
std::string run_output(const std::string& point_dir, int run, const char* extension = ".json") {
  return point_dir + "/measured-" + std::to_string(run) + extension;
}

}  // namespace

void measure_run(const Tools& tools, const MeasureSpec& measure, const std::string& point_dir,
                 const PointConfig& config, int run) {
  const std::string out = run_output(point_dir, run);
  if (std::filesystem::exists(out)) {  // a resumed sweep: keep a run that finished
    try {
      if (read_json_output(out).contains("time_per_step_s")) return;
    } catch (const Error&) {
    }
  }
  std::vector<std::string> argv = {tools.plait, "run", "--mpirun", tools.mpirun};
  if (!tools.plait_exec.empty()) argv.insert(argv.end(), {"--exec", tools.plait_exec});
  argv.insert(argv.end(), {"-n", std::to_string(devices(config)), point_dir + "/program.json", "--steps",
                           std::to_string(measure.steps), "--warmup", std::to_string(measure.warmup), "--json"});
  if (speed_references(tools, measure, config)) argv.push_back("--speed-probe");
  run_or_throw(argv, out, run_output(point_dir, run, ".stderr"), "plait run");
}

RunRecord judge_measured_run(const std::string& point_dir, int run) {
  const std::string out = run_output(point_dir, run);
  nlohmann::json report = read_json_output(out);
  const Steadiness verdict = judge_run(report);
  if (report.value("steadiness", nlohmann::json()) != steadiness_json(verdict)) {
    report["steadiness"] = steadiness_json(verdict);
    write_text_file(out, report.dump() + "\n");
  }
  return {run, number_field(report, "time_per_step_s", out), verdict.steady, verdict.reasons};
}

void evaluate_point(const Tools& tools, const MeasureSpec& measure, const std::string& point_dir,
                    const std::vector<int>& runs, PointResult& result) {
  const std::optional<SpeedReferences> references = speed_references(tools, measure, result.config);
  std::vector<double> times, serial_times;
  std::vector<std::optional<double>> serial_speed_factors;  // per run: its serial probe / the alone reference
  std::vector<std::vector<double>> rank_speed_factors;  // per run, per rank: probe / reference
  if (runs.empty()) throw Error(point_dir, "no measured run to evaluate");
  for (int run : runs) {
    const std::string out = run_output(point_dir, run);
    const nlohmann::json report = read_json_output(out);
    times.push_back(number_field(report, "time_per_step_s", out));
    if (report.contains("serial_time_per_step_s") && report.at("serial_time_per_step_s").is_number())
      serial_times.push_back(report.at("serial_time_per_step_s"));
    if (references) {
      std::vector<double> factors = costmodels::read_speed_probes(report, out);
      for (double& factor : factors) factor /= references->steps_s;
      rank_speed_factors.push_back(std::move(factors));
      const auto& serial_probe = report.value("serial_speed_probe_s", nlohmann::json());
      serial_speed_factors.push_back(serial_probe.is_number() && serial_probe.get<double>() > 0
                                         ? std::optional<double>(serial_probe.get<double>() / references->serial_s)
                                         : std::nullopt);
    }
  }
  result.measured_time_s = median(times);
  result.measured_min_s = *std::min_element(times.begin(), times.end());
  result.measured_max_s = *std::max_element(times.begin(), times.end());
  // Every run timed its serial baseline, or none did (plait-exec --no-serial).
  // The speedup is the median serial step over the median step, so that its
  // error follows from theirs: speedup error = (1 + serial error) / (1 + step error) - 1.
  const bool serial_timed = serial_times.size() == times.size();
  if (serial_timed) {
    result.measured_serial_s = median(serial_times);
    result.measured_speedup = *result.measured_serial_s / *result.measured_time_s;
  }
  if (rank_speed_factors.empty() || !result.predicted_time_s) return;

  // Each run is predicted at its own ranks' speeds (plait simulate
  // --rank-compute-scale: the two cores of this VM run up to ~30 % apart, and
  // the slower rank holds the other up); a slow run is judged against its own
  // slow probe (paired_prediction).
  const double serial_at_calibration = result.predicted_serial_s.value_or(0);
  std::vector<double> predicted, predicted_serial;
  for (std::size_t k = 0; k < times.size(); ++k) {
    const std::string name = "prediction-run-" + std::to_string(runs[k]);
    const nlohmann::json prediction = simulate(tools, point_dir, result.config, name,
                                               {"--rank-compute-scale", comma_separated(rank_speed_factors[k])});
    const std::string origin = point_dir + "/" + name + ".json";
    predicted.push_back(number_field(prediction, "predicted_time_s", origin));
    // The serial step at its own probe's speed (it runs alone on rank 0, after
    // the steps; a serial step's price scales with its compute); else at rank 0's.
    const std::optional<double>& serial_factor = serial_speed_factors[k];
    predicted_serial.push_back(serial_factor && serial_at_calibration > 0
                                   ? serial_at_calibration * *serial_factor
                                   : number_field(prediction, "serial_predicted_time_s", origin));
  }
  result.predicted_at_calibration_s = result.predicted_time_s;
  result.predicted_speedup_at_calibration = result.predicted_speedup;
  result.predicted_time_s = paired_prediction(times, predicted);
  result.speed_factor = *result.predicted_time_s / *result.predicted_at_calibration_s;
  if (!serial_timed) return;
  // The serial step is judged as the step is: the median of its runs' errors,
  // each run's serial step priced at its own probe.
  result.predicted_serial_s = paired_prediction(serial_times, predicted_serial);
  result.predicted_speedup = *result.predicted_serial_s / *result.predicted_time_s;
}

}  // namespace plait::experiments::detail
