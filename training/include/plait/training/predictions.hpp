// Predicted step times of a training run's solver settings (written by
// `plait train --profile`, read by plait-exec train for its metrics):
// {"format": "plait.train-predictions", "version": 1,
//  "predictions": [{"settings": {..., "ode_layers": N}, "predicted_step_s": s}, ...]}
#pragma once

#include <map>
#include <string>

namespace plait::training {

// Keyed by prediction_key (config.hpp): the settings and the level's ODE blocks.
void save_training_predictions(const std::map<std::string, double>& predictions, const std::string& path);
std::map<std::string, double> load_training_predictions(const std::string& path);

}  // namespace plait::training
