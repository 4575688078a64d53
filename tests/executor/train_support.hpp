// What the training tests share: a scratch directory, a tiny char LM that
// learns in a few dozen steps, the losses a run wrote, a run's error.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plait/executor/exec.hpp"
#include "plait/executor/train.hpp"

namespace plait::executor {

namespace fs = std::filesystem;
using training::TrainConfig;

inline fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("plait-train-test-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A small char LM on a repetitive text it can learn in a few dozen steps.
inline TrainConfig tiny_lm(const fs::path& dir) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  std::ofstream(dir / "corpus.txt") << text;
  TrainConfig c;
  c.data.corpus = (dir / "corpus.txt").string();
  c.data.validation_fraction = 0.1;
  c.model = {.d_model = 16, .heads = 2, .mlp_ratio = 2, .seq = 8, .batch = 4, .ode_layers = 4,
             .buffer_before = 1, .buffer_after = 1};
  c.solver.forward = {.levels = 2, .coarsening_factor = 2, .iterations = 1};
  c.solver.adjoint = {.levels = 2, .coarsening_factor = 2, .iterations = 1};
  c.optimizer.lr = 0.01;
  c.optimizer.warmup_steps = 2;
  c.steps = 40;
  c.eval_interval = 40;
  c.eval_batches = 2;
  c.checkpoint_interval = 10;
  c.out = (dir / "run").string();
  return c;
}

inline std::vector<double> losses_of(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<double> losses;
  std::string line;
  while (std::getline(in, line)) losses.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return losses;
}

inline std::string error_of_training(const TrainConfig& config, const TrainOverrides& overrides = {}) {
  SelfWorld world;
  try {
    train(world, config, overrides);
  } catch (const AgreedError& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace plait::executor
