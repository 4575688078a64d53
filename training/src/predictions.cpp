#include "plait/training/predictions.hpp"

#include "plait/training/config.hpp"

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::training {

using nlohmann::json;

void save_training_predictions(const std::map<std::string, double>& predictions, const std::string& path) {
  json out{{"format", "plait.train-predictions"}, {"version", 1}, {"predictions", json::array()}};
  for (const auto& [settings, seconds] : predictions)
    out["predictions"].push_back({{"settings", json::parse(settings)}, {"predicted_step_s", seconds}});
  write_text_file(path, out.dump(2));
}

std::map<std::string, double> load_training_predictions(const std::string& path) {
  std::map<std::string, double> predictions;
  try {
    const json in = json::parse(read_text_file(path));
    if (in.at("format") != "plait.train-predictions" || in.at("version") != 1)
      throw Error(path, "not a plait.train-predictions file (version 1)");
    for (const auto& entry : in.at("predictions")) {
      const double seconds = entry.at("predicted_step_s").get<double>();
      if (!(seconds > 0)) throw Error(path, "predicted_step_s must be positive");
      const json& settings = entry.at("settings");
      predictions[prediction_key(parse_settings_json(settings.dump(), path), settings.at("ode_layers").get<int>())] = seconds;
    }
  } catch (const json::exception& error) {
    throw Error(path, std::string("malformed: ") + error.what());
  }
  return predictions;
}

}  // namespace plait::training
