// Training configs: what `plait-exec train config.json` runs. Parsed and
// validated here (no torch), every problem collected with its JSON pointer.
//
// Format "plait.train", version 1 (see README "Training" for every field):
//   task       "char-lm" | "vit"
//   data       {"corpus": text file or directory, "dataset": IDX directory,
//               "validation_fraction", "tokenizer": "char" | "word",
//               "vocabulary": word only, 257..65536 including the 256 bytes}
//   model      {"d_model", "heads", "mlp_ratio", "seq", "batch", "ode_layers",
//               "buffer_before", "buffer_after", "tstop", "init", "dropout", "patch"}
//   solver     {"mode": "serial" | "mgrit" | "multilevel", "forward": phase, "adjoint": phase,
//               multilevel only: "levels", "cf", "coarse_steps", "fine_steps", "correction",
//               "restriction": "injection" | "average" | "even" | "odd" | "alternate",
//               "level_solver": "serial" | "mgrit", "coarse_lr_factor", "coarse_batch": "fresh" | "cycle",
//               "line_search", "momentum": "keep" | "reset" | "restrict"}
//              phase = {"levels", "cf", "relax": "F" | "FCF", "iterations"}
//   optimizer  {"kind": "adamw" | "sgd", "lr", "weight_decay", "beta1", "beta2",
//               "momentum", "warmup_steps", "min_lr_ratio", "clip_norm"}
//   detector   {"interval", "threshold", "policy": "switch-to-serial" |
//               "raise-iterations", "max_iterations"}  (interval 0: off)
//   steps, seed, eval_interval, eval_batches, checkpoint_interval, log_interval,
//   device, out, profile
#pragma once

#include <cstdint>
#include <string>

#include "plait/schedule/build.hpp"
#include "plait/schedule/program.hpp"

namespace plait::training {

struct DataConfig {
  std::string corpus = "/usr/share/games/fortunes";           // char-lm: a text file or a directory
  std::string dataset = "/usr/share/datasets/fashion-mnist";  // vit: IDX files (gzipped or not)
  double validation_fraction = 0.05;                          // char-lm: the tail of the corpus
  // char-lm: "char" (the bytes present in the text) or "word" (WordTokenizer:
  // stands in for GPT-2's byte-pair tokenizer, which is not available offline).
  std::string tokenizer = "char";
  std::int32_t vocabulary = 4096;  // word: tokens including the 256 bytes; char: ignored
};

struct ModelConfig {
  std::int32_t d_model = 128, heads = 4, mlp_ratio = 4;
  std::int32_t seq = 64;  // char-lm: context length; vit: set from the patches (+1 class token)
  std::int32_t batch = 16;
  std::int32_t ode_layers = 16;    // blocks inside the MGRIT domain, h = tstop / ode_layers
  std::int32_t buffer_before = 2;  // ordinary blocks (h = 1) on the first rank
  std::int32_t buffer_after = 2;   // ... and on the last rank
  double tstop = 1.0;
  std::string init = "depth-scaled";  // normal | pytorch | depth-scaled
  double dropout = 0.0;               // on both residual branches; masks fixed per optimizer step
  std::int32_t patch = 7;             // vit: square patch side, dividing 28
};

// Multilevel-in-depth training (MG/OPT): level l is the network with
// ode_layers / cf^l ODE blocks of step cf^l h; a cycle runs `coarse_steps`
// optimizer steps on the coarsest level, then `fine_steps` on each finer one,
// each level's change prolonged to the next finer level before its steps.
struct MultilevelConfig {
  std::int32_t levels = 2;  // 1: single-level training
  std::int32_t cf = 2;
  std::int32_t coarse_steps = 1;
  std::int32_t fine_steps = 1;
  bool correction = true;                // the first-order (tau) correction of each coarse objective
  // How coarse block g relates to fine blocks g*cf .. g*cf+cf-1 (block_transfer):
  // injection | average: set from the first one | their mean, its change added to all of them;
  // even | odd: it is the first | second one (cf 2), its change added to that one only;
  // alternate: even in even-numbered cycles, odd in the others.
  std::string restriction = "injection";
  std::string level_solver = "serial";    // serial | mgrit (with forward / adjoint) at every level
  double coarse_lr_factor = 1.0;          // level l steps with the learning rate times this^l
  // fresh: each coarse step draws its own batch; cycle: every coarse step of a
  // cycle uses the cycle's first batch, the one the correction is made on.
  std::string coarse_batch = "fresh";
  // Before the finest level's steps, backtrack the prolonged change (1, 1/2,
  // 1/4, else 0) until the fine loss on the cycle's batch is no worse (MG/OPT's line search).
  bool line_search = false;
  // Optimizer state at level switches. keep: each level's own state carries
  // over between cycles; reset: a level's state restarts whenever its steps
  // start; restrict: restricted and prolonged with the parameters (one history).
  std::string momentum = "keep";
};

struct SolverConfig {
  std::string mode = "mgrit";  // serial | mgrit | multilevel
  schedule::PhaseSpec forward{.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
  schedule::PhaseSpec adjoint{.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 1};
  MultilevelConfig multilevel;
};

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw | sgd
  double lr = 1e-3, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, momentum = 0.9;
  std::int32_t warmup_steps = 20;
  double min_lr_ratio = 0.1;  // cosine decay ends at lr * min_lr_ratio
  double clip_norm = 1.0;     // global gradient norm; 0: no clipping
};

struct DetectorConfig {
  std::int32_t interval = 0;  // every K optimizer steps (0: off)
  double threshold = 1.0;     // convergence factor above which the transition is declared
  std::string policy = "switch-to-serial";  // switch-to-serial | raise-iterations
  std::int32_t max_iterations = 8;          // raise-iterations: cap per phase
};

struct TrainConfig {
  std::string task = "char-lm";  // char-lm | vit
  DataConfig data;
  ModelConfig model;
  SolverConfig solver;
  OptimizerConfig optimizer;
  DetectorConfig detector;
  std::int32_t steps = 200;
  std::uint64_t seed = 1;
  std::int32_t eval_interval = 50;  // validation every N steps (and at the end)
  std::int32_t eval_batches = 8;    // char-lm: batches per validation; vit: 0 = the whole test set
  std::int32_t checkpoint_interval = 50;
  std::int32_t log_interval = 10;
  std::string device = "cpu";
  std::string out = "train-out";
  std::string profile;  // a calibrated profile: metrics carry plait simulate's prediction
};

inline constexpr int vit_image_side = 28;  // Fashion-MNIST
inline constexpr int vit_classes = 10;

// Throws plait::Error "<origin>: <pointer>: <why>; <pointer>: <why>..." naming every problem.
TrainConfig parse_train_config(const std::string& text, const std::string& origin = "<string>");
TrainConfig load_train_config(const std::string& path);
// The config as JSON (what a checkpoint and metrics record), parseable again.
std::string dump_train_config(const TrainConfig& config);

// The solver settings in force (the detector may change them mid-run).
struct SolverSettings {
  std::string mode;  // serial | mgrit (multilevel runs one of them at every level)
  schedule::PhaseSpec forward, adjoint;
};
// The config's own settings (serial mode: one level per phase; multilevel:
// its level_solver's).
SolverSettings initial_settings(const TrainConfig& config);
// The same settings, serial (exact).
SolverSettings serial_settings(SolverSettings settings);
// {"mode", "forward": {"levels", "cf", "relax", "iterations"}, "adjoint": {...}} as one JSON line.
std::string settings_json(const SolverSettings& settings);
SolverSettings parse_settings_json(const std::string& text, const std::string& origin);
// Key of a predicted step time: settings_json with the ODE blocks of the
// level it solves added ("ode_layers"), one JSON line.
std::string prediction_key(const SolverSettings& settings, int ode_layers);
// What the Program of the ODE blocks is built from, on `ranks` ranks.
schedule::BuildSpec build_spec(const TrainConfig& config, const SolverSettings& settings, int ranks);
// build_serial or build_mgrit of build_spec; errors say which solver and split failed.
schedule::Program build_program(const TrainConfig& config, const SolverSettings& settings, int ranks);

// Levels of the run: the multilevel hierarchy's, else 1.
int training_levels(const TrainConfig& config);
// The config of level `level` (0: the config itself): ode_layers / cf^level
// ODE blocks over the same tstop, so each block steps cf^level h.
TrainConfig level_config(const TrainConfig& config, int level);

// Blocks of the whole network: buffers + ODE blocks.
inline int total_blocks(const ModelConfig& model) {
  return model.buffer_before + model.ode_layers + model.buffer_after;
}

}  // namespace plait::training
