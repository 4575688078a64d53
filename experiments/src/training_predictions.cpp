#include "plait/experiments/training_predictions.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {

using nlohmann::json;

std::map<std::string, double> predict_training_settings(const training::TrainConfig& config, int ranks,
                                                        const PredictionTools& tools, const std::string& work_dir) {
  std::vector<training::SolverSettings> candidates;
  const training::SolverSettings initial = training::initial_settings(config);
  candidates.push_back(initial);
  candidates.push_back(training::serial_settings(initial));
  if (initial.mode == "mgrit" && config.detector.interval > 0 && config.detector.policy == "raise-iterations") {
    training::SolverSettings raised = initial;
    while (true) {  // as Trainer::apply_policy raises them: +1 per MGRIT phase below the cap
      bool changed = false;
      for (auto* phase : {&raised.forward, &raised.adjoint})
        if (phase->levels > 1 && phase->iterations < config.detector.max_iterations) {
          phase->iterations += 1;
          changed = true;
        }
      if (!changed) break;
      candidates.push_back(raised);
    }
  }
  std::filesystem::create_directories(work_dir);
  std::map<std::string, double> predictions;
  int made = 0;
  for (int level = 0; level < training::training_levels(config); ++level) {  // multilevel: every level's network
    const training::TrainConfig level_config = training::level_config(config, level);
    for (const auto& settings : candidates) {
      const std::string key = training::prediction_key(settings, level_config.model.ode_layers);
      if (predictions.count(key)) continue;
      const std::string stem = work_dir + "/setting-" + std::to_string(made++);
      schedule::save_program(training::build_program(level_config, settings, ranks), stem + ".program.json");
      const std::vector<std::string> argv = {tools.plait, "simulate", stem + ".program.json", "--platform",
                                             tools.platform, "--profile", tools.profile, "--json"};
      const int code = detail::run_process(argv, stem + ".prediction.json", stem + ".stderr");
      if (code != 0)
        throw Error("plait simulate", "exit " + std::to_string(code) + ": " + detail::last_words(stem + ".stderr") +
                                          " [" + detail::join_command(argv) + "]");
      const json prediction = json::parse(read_text_file(stem + ".prediction.json"), nullptr, false);
      if (!prediction.is_object() || !prediction.contains("predicted_time_s") || !prediction["predicted_time_s"].is_number())
        throw Error(stem + ".prediction.json", "no predicted_time_s");
      predictions[key] = prediction["predicted_time_s"].get<double>();
    }
  }
  return predictions;
}

}  // namespace plait::experiments
