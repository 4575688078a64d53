// Predicted step times for a training run: every solver setting the run may
// use (its own, the serial one, and each iteration count raise-iterations
// may reach, at every level of a multilevel run) is built into a Program of
// the ODE blocks and priced by
// `plait simulate` (a child process per setting: one SimGrid engine each).
#pragma once

#include <map>
#include <string>

#include "plait/training/config.hpp"
#include "plait/training/predictions.hpp"

namespace plait::experiments {

struct PredictionTools {
  std::string plait;     // the plait binary
  std::string profile;   // a calibrated profile (plait calibrate)
  std::string platform = "local";
};

// prediction_key -> predicted seconds of one step of the ODE solve on `ranks` ranks.
std::map<std::string, double> predict_training_settings(const training::TrainConfig& config, int ranks,
                                                        const PredictionTools& tools, const std::string& work_dir);

}  // namespace plait::experiments
