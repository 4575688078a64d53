// Building, predicting and measuring one sweep point.
#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/points.hpp"
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

schedule::Program build_point_program(const PointConfig& c) {
  schedule::BuildSpec spec;
  spec.layers = c.layers;
  spec.ranks = c.ranks;
  const schedule::Relax relax = schedule::parse_relax(c.relax);
  spec.forward = {.levels = c.levels, .coarsening_factor = c.cf, .relax = relax, .iterations = c.fwd_iters};
  spec.adjoint = {.levels = c.levels, .coarsening_factor = c.cf, .relax = relax, .iterations = c.bwd_iters};
  spec.model.kind = "transformer";
  spec.model.d_model = c.model.d_model;
  spec.model.heads = c.model.heads;
  spec.model.seq = c.model.seq;
  spec.model.batch = c.model.batch;
  spec.model.mlp_ratio = c.model.mlp_ratio;
  spec.model.dtype = c.model.dtype;
  spec.model.causal = c.mask == "causal";
  return schedule::build_mgrit(spec);
}

void predict_point(const Tools& tools, const std::string& point_dir, PointResult& result) {
  std::vector<std::string> argv = {tools.plait, "simulate", point_dir + "/program.json", "--platform",
                                   result.config.platform, "--json"};
  if (!tools.profile.empty()) argv.insert(argv.end(), {"--profile", tools.profile});
  const std::string out = point_dir + "/prediction.json";
  run_or_throw(argv, out, point_dir + "/prediction.stderr", "plait simulate");
  const nlohmann::json prediction = read_json_output(out);
  result.predicted_time_s = number_field(prediction, "predicted_time_s", out);
  result.predicted_speedup = number_field(prediction, "speedup", out);
}

void measure_point(const Tools& tools, const MeasureSpec& measure, const std::string& point_dir,
                   PointResult& result) {
  std::vector<double> times, speedups;
  for (int run = 0; run < measure.repeats; ++run) {
    std::vector<std::string> argv = {tools.plait, "run", "--mpirun", tools.mpirun};
    if (!tools.plait_exec.empty()) argv.insert(argv.end(), {"--exec", tools.plait_exec});
    argv.insert(argv.end(), {"-n", std::to_string(result.config.ranks), point_dir + "/program.json", "--steps",
                             std::to_string(measure.steps), "--warmup", std::to_string(measure.warmup), "--json"});
    const std::string out = point_dir + "/measured-" + std::to_string(run) + ".json";
    run_or_throw(argv, out, point_dir + "/measured-" + std::to_string(run) + ".stderr", "plait run");
    const nlohmann::json report = read_json_output(out);
    times.push_back(number_field(report, "time_per_step_s", out));
    if (report.contains("speedup") && report.at("speedup").is_number()) speedups.push_back(report.at("speedup"));
  }
  result.measured_time_s = median(times);
  result.measured_min_s = *std::min_element(times.begin(), times.end());
  result.measured_max_s = *std::max_element(times.begin(), times.end());
  if (!speedups.empty()) result.measured_speedup = median(speedups);
}

}  // namespace plait::experiments::detail
