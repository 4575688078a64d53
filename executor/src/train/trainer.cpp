// The training loop of `plait-exec train`: per optimizer step, the first rank
// embeds the batch (and runs the first buffer blocks), the Program solves the
// ODE forward and adjoint (serial or MGRIT, over all ranks), the last rank's
// loss op runs the last buffer blocks and the head, and every rank updates the
// parameters it owns. The detector probes the solver every K steps; a
// multilevel run steps the level its cycle says (multilevel_cycle.cpp).
#include "trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <unistd.h>

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include "../detail/backend_access.hpp"
#include "plait/executor/exec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/files.hpp"
#include "plait/training/multilevel.hpp"
#include "plait/training/predictions.hpp"

namespace plait::executor {

using training::TrainConfig;

namespace detail {

namespace {

constexpr std::uint64_t dropout_stream = 1ULL << 43;

using nlohmann::json;
using schedule::Program;

// The forward solve and the loss alone (evaluation needs no adjoint).
Program forward_only(const Program& full) {
  Program program = full;
  for (auto& rank : program.rank_programs) {
    std::vector<schedule::Section> kept;
    schedule::Section loss{.name = "loss", .phase = schedule::Phase::none};
    for (const auto& section : rank.sections) {
      if (section.phase != schedule::Phase::adjoint) kept.push_back(section);
      else
        for (const auto& op : section.ops)
          if (op.kind == schedule::OpKind::loss) loss.ops.push_back(op);
    }
    if (!loss.ops.empty()) kept.push_back(loss);
    rank.sections = std::move(kept);
  }
  return program;
}

// FLOPs of the ops a rank interprets, by the Program's work table.
class FlopCounter : public schedule::OpListener {
 public:
  explicit FlopCounter(const Program& program) : work_(program.work) {}
  void after(const schedule::OpRef& ref) override {
    auto found = work_.find(std::string(schedule::cost_key(*ref.op)));
    if (found != work_.end()) flops += found->second.flops;
  }
  double flops = 0;

 private:
  const std::map<std::string, schedule::Work>& work_;
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string format_duration(double seconds) {
  char text[32];
  if (seconds >= 3600) std::snprintf(text, sizeof text, "%dh%02dm", int(seconds / 3600), int(seconds / 60) % 60);
  else if (seconds >= 60) std::snprintf(text, sizeof text, "%dm%02ds", int(seconds / 60), int(seconds) % 60);
  else std::snprintf(text, sizeof text, "%.1fs", seconds);
  return text;
}

}  // namespace

Trainer::Trainer(World& world, const training::TrainConfig& config, const TrainOverrides& overrides)
    : world_(world), config_(config), overrides_(overrides), out_(config.out) {
  agreed(world_, [&] {
    data_ = std::make_unique<TrainingData>(config_);
    if (!overrides_.predictions_path.empty())
      predictions_ = training::load_training_predictions(overrides_.predictions_path);
  });
  settings_ = training::initial_settings(config_);
  const int levels = training::training_levels(config_);
  levels_.reserve(std::size_t(levels));
  agreed(world_, [&] {
    for (int l = 0; l < levels; ++l) {
      Level& level = levels_.emplace_back();
      level.index = l;
      level.config = training::level_config(config_, l);
      const Program& main = program_for(level, settings_);
      level.backend = std::make_unique<TorchBackend>(main, world_.rank(), config_.device);
      level.optimizer = std::make_unique<Optimizer>(config_.optimizer);
      if (l == 0) context_ = std::make_unique<ModelContext>(main.model, config_.device);
      // Level l's block g and level l-1's blocks g*cf.. must share a rank.
      const int cf = config_.solver.multilevel.cf;
      for (int r = 0; l > 0 && r < world_.size(); ++r)
        if (level.partition[r] * cf != levels_[l - 1].partition[r])
          throw Error("solver", "level " + std::to_string(l) + " splits its " + std::to_string(level.config.model.ode_layers) +
                                    " ODE blocks over the ranks unlike level " + std::to_string(l - 1) +
                                    "; choose ode_layers divisible by ranks * cf^(levels-1)");
    }
    program_for(levels_[0], training::serial_settings(settings_));  // checks the serial Program's split now, not at the first probe
  });
  model_ = std::make_unique<TaskModel>(config_, data_->vocab(), first(), last(), *context_);
  outside_flops_ = training::outside_flops(config_, data_->vocab());
  for (Level& level : levels_) {
    double elements = 0;
    for (const auto& slot : slots(level))  // the shared parameters are counted on their rank only
      elements += double(slot.parameter.numel());
    level.parameters = global_sum(elements);
  }
}

// Programs by settings, built once per level. Every Program of a level must
// split its blocks as the first one did: each rank owns (and updates) them.
const Program& Trainer::program_for(Level& level, const Settings& settings, bool evaluation) {
  const std::string key = training::settings_json(settings) + (evaluation ? "/eval" : "");
  auto found = level.programs.find(key);
  if (found != level.programs.end()) return found->second;
  Program program = training::build_program(level.config, settings, world_.size());
  if (!level.partition.empty() && program.partition != level.partition)
    throw Error("solver", "the " + settings.mode + " Program splits the ODE blocks over the ranks differently from "
                "the first one; choose ode_layers divisible by ranks * cf^(levels-1)");
  if (level.partition.empty()) level.partition = program.partition;
  if (evaluation) program = forward_only(program);
  return level.programs.emplace(key, std::move(program)).first->second;
}

Trainer::Outcome Trainer::run_program(Level& level, const Program& program, const Batch& batch, bool with_gradients,
                                      int step) {
  TorchBackend& backend = *level.backend;
  backend.clear_states();
  backend.zero_gradients();
  for (auto& p : model_->parameters()) p.tensor.mutable_grad() = at::Tensor();
  const double dropout = with_gradients ? config_.model.dropout : 0.0;
  const std::uint64_t mask_seed = mix_seed(config_.seed, dropout_stream + std::uint64_t(step));
  BackendAccess::set_dropout(backend, dropout, mask_seed);
  model_->set_dropout(dropout, mask_seed);

  at::Tensor front;
  if (first()) {
    at::AutoGradMode grad(with_gradients);
    front = model_->front(batch.inputs);
    BackendAccess::set_input(backend, front.detach());
  }
  Outcome outcome;
  if (last()) {
    BackendAccess::set_loss(backend, [&](const at::Tensor& output) {
      at::AutoGradMode grad(with_gradients);
      at::Tensor leaf = output.detach().requires_grad_(with_gradients);
      auto result = model_->back(leaf, batch.targets);
      outcome.loss = result.loss.item<double>();
      if (step == overrides_.inject_nan_at_step) outcome.loss = std::nan("");
      outcome.correct = result.correct;
      outcome.count = result.count;
      if (!with_gradients) return at::zeros_like(output);
      result.loss.backward();
      return leaf.grad();
    });
  }
  FlopCounter counter(program);
  {
    auto comm = world_.make_comm();
    outcome.result = schedule::interpret(program, world_.rank(), backend, *comm, &counter);
  }  // the comm waits for its sends here
  if (first() && with_gradients) {
    const at::Tensor* adjoint = BackendAccess::state(backend, schedule::Buffer{schedule::Space::w, 0, 0});
    if (!adjoint) throw Error("rank 0", "the Program left no adjoint at the ODE's input (w[0][0])");
    front.backward(*adjoint);
  }
  const auto totals = world_.sum_all({outcome.loss, double(outcome.correct), double(outcome.count), counter.flops});
  outcome.loss = totals[0];
  outcome.correct = std::int64_t(totals[1]);
  outcome.count = std::int64_t(totals[2]);
  outcome.flops = totals[3];
  return outcome;
}

std::vector<ParameterSlot> Trainer::slots(Level& level) {
  std::vector<ParameterSlot> out;
  const int offset = config_.model.buffer_before;
  const std::string prefix = level.index == 0 ? "block" : "level" + std::to_string(level.index) + ".block";
  for (int block = level.partition[world_.rank()]; block < level.partition[world_.rank() + 1]; ++block) {
    auto& parameters = BackendAccess::parameters(*level.backend, block);
    const auto* gradients = BackendAccess::gradients(*level.backend, block);
    for (std::size_t i = 0; i < parameters.size(); ++i)
      out.push_back({prefix + std::to_string(offset + block) + "." + std::to_string(i), parameters[i],
                     gradients ? (*gradients)[i] : at::Tensor()});
  }
  for (auto& p : model_->parameters()) out.push_back({p.name, p.tensor, p.tensor.grad()});
  return out;
}

std::vector<at::Tensor> Trainer::gradient_snapshot(Level& level) {
  std::vector<at::Tensor> copies;
  for (const auto& slot : slots(level))
    copies.push_back(slot.gradient.defined() ? slot.gradient.detach().clone() : at::Tensor());
  return copies;
}

// Mean loss (and accuracy) of the exact model on the evaluation batches: the
// serial forward of the finest level, whatever the training mode.
std::pair<double, double> Trainer::evaluate() {
  Level& fine = levels_.front();
  const Program& program = program_for(fine, training::serial_settings(settings_), true);
  double loss = 0;
  std::int64_t correct = 0, count = 0;
  const auto batches = data_->evaluation_batches();
  for (const auto& batch : batches) {
    const Outcome outcome = run_program(fine, program, batch, false, 0);
    loss += outcome.loss;
    correct += outcome.correct;
    count += outcome.count;
  }
  return {loss / double(batches.size()), count > 0 ? double(correct) / double(count) : 0.0};
}

TrainSummary Trainer::run() {
  TrainSummary summary;
  double elapsed_before = 0, cumulative_flops = 0, training_time = 0;
  int start = 0;
  if (overrides_.resume) {
    start = load_checkpoint(elapsed_before);
    const auto [flops, seconds] = keep_metrics_up_to(start);
    const auto totals = world_.sum_all({flops, seconds});
    cumulative_flops = totals[0];
    training_time = totals[1];
  } else {
    prepare_output();
  }
  if (first())
    std::fprintf(stderr, "plait-exec train: %s, %d ODE + %d buffer blocks on %d rank(s), %s%s; %s\n", config_.task.c_str(),
                 config_.model.ode_layers, config_.model.buffer_before + config_.model.buffer_after, world_.size(),
                 training::settings_json(settings_).c_str(),
                 levels_.size() > 1 ? (", multilevel: " + std::to_string(levels_.size()) + " levels, cycles of " +
                                       std::to_string(training::cycle_steps(config_)) + " steps").c_str()
                                    : "",
                 data_->describe().c_str());
  const bool progress = first() && overrides_.show_progress && ::isatty(2) && !std::getenv("CI");
  std::vector<double> step_times;
  const double started = now_seconds();
  int last_checkpoint = start;
  for (int step = start; step < config_.steps; ++step) {
    const training::CycleStep where = training::cycle_step(config_, step);
    Level& level = levels_[where.level];
    const bool cycle_batch = level.index > 0 && !where.starts_cycle && config_.solver.multilevel.coarse_batch == "cycle";
    const Batch batch = cycle_batch ? cycle_batch_ : data_->train_batch(step);
    const bool probing = detector_active_ && settings_.mode == "mgrit" && config_.detector.interval > 0 &&
                         step > 0 && step % config_.detector.interval == 0;
    std::optional<DetectorEvent> event;
    std::vector<at::Tensor> serial_gradient;
    if (probing) event = probe(step, batch, serial_gradient);

    world_.barrier();
    const double step_start = now_seconds();
    const Settings used = settings_;
    double flops = 0;
    if (where.starts_cycle && levels_.size() > 1) flops += begin_cycle(step, batch);
    std::optional<Prolongation> prolonged;
    if (where.prolong_from > 0) {
      prolonged = prolong(where.prolong_from, step);
      flops += prolonged->flops;
    }
    const Outcome outcome = run_program(level, program_for(level, settings_), batch, true, step);
    auto parameters = slots(level);
    add_correction(level, parameters, outcome.loss);
    std::optional<CorrectionCheck> checked;
    if (overrides_.check_correction && where.starts_cycle && level.index > 0) {  // at the restricted parameters
      checked = check_correction(level, batch, step);  // not counted in the FLOPs: a check
      parameters = slots(level);
    }
    std::optional<double> objective_value;
    if (level.index > 0 && config_.solver.multilevel.correction && !level.correction.empty())
      objective_value = objective(level, outcome.loss);
    double local = 0;
    for (const auto& slot : parameters)
      if (slot.gradient.defined()) local += slot.gradient.to(at::kDouble).pow(2).sum().item<double>();
    const double grad_norm = std::sqrt(global_sum(local));
    if (!std::isfinite(outcome.loss) || !std::isfinite(grad_norm)) {
      const std::string what = !std::isfinite(outcome.loss) ? "the loss" : "the gradient norm";
      throw AgreedError(Error("step " + std::to_string(step + 1), what + " is not finite; stopped, the last good checkpoint (step " +
                                                                  std::to_string(last_checkpoint) + ") is kept in " +
                                                                  (out_ / "checkpoint").string()),
                        0);
    }
    if (event) compare_gradients(serial_gradient, *event);  // before clipping: the solver's own error
    if (config_.optimizer.clip_norm > 0 && grad_norm > config_.optimizer.clip_norm) {
      const double scale = config_.optimizer.clip_norm / (grad_norm + 1e-6);
      for (auto& slot : parameters)
        if (slot.gradient.defined()) slot.gradient.mul_(scale);
    }
    const double lr = learning_rate(config_.optimizer, step, config_.steps) *
                      std::pow(config_.solver.multilevel.coarse_lr_factor, level.index);
    level.optimizer->step(parameters, lr);
    world_.barrier();
    const double step_time = now_seconds() - step_start;
    if (!probing) step_times.push_back(step_time);
    flops += outcome.flops + outside_flops_ + training::optimizer_flops(config_.optimizer, level.parameters);
    cumulative_flops += flops;
    training_time += step_time;

    json record{{"step", step + 1}, {"loss", outcome.loss}, {"lr", lr}, {"grad_norm", grad_norm},
                {"step_time_s", step_time}, {"time_s", elapsed_before + now_seconds() - started},
                {"settings", settings_object(used)}, {"level", level.index}, {"flops", flops},
                {"cumulative_flops", cumulative_flops}, {"training_time_s", training_time}};
    if (checked) {
      record["correction_error"] = checked->gradient_error;
      if (checked->value_error >= 0) record["objective_error"] = checked->value_error;
      if (checked->transfer_error >= 0) record["transfer_error"] = checked->transfer_error;
    }
    if (objective_value) record["objective"] = *objective_value;
    if (prolonged && config_.solver.multilevel.line_search && where.prolong_from == 1) record["line_search"] = prolonged->step;
    if (auto predicted = predictions_.find(training::prediction_key(used, level.config.model.ode_layers));
        predicted != predictions_.end())
      record["predicted_step_s"] = predicted->second;
    if (outcome.count > 0 && config_.task == "vit") record["accuracy"] = double(outcome.correct) / double(outcome.count);
    if (event) {
      apply_policy(*event);
      probes_.push_back(*event);
      record["detector"] = {{"forward_factor", event->forward_factor}, {"adjoint_factor", event->adjoint_factor},
                            {"gradient_relative_error", event->gradient_relative_error},
                            {"gradient_cosine", event->gradient_cosine}, {"action", event->action}};
      if (first() && event->action != "none")
        std::fprintf(stderr, "%splait-exec train: step %d: convergence factor forward %.3g, adjoint %.3g > %.3g: %s (%s)\n",
                     progress ? "\n" : "", step + 1, event->forward_factor, event->adjoint_factor,
                     config_.detector.threshold, event->action.c_str(), training::settings_json(settings_).c_str());
    }
    const bool evaluating = (step + 1) % config_.eval_interval == 0 || step + 1 == config_.steps;
    if (evaluating) {
      const auto [val_loss, val_accuracy] = evaluate();
      record["val_loss"] = val_loss;
      if (config_.task == "vit") record["val_accuracy"] = val_accuracy;
      summary.validation_loss = val_loss;
      if (config_.task == "vit") summary.validation_accuracy = val_accuracy;
      if (first())
        std::fprintf(stderr, "%sstep %d/%d  loss %.4f  validation loss %.4f%s  %.3g FLOPs\n", progress ? "\n" : "",
                     step + 1, config_.steps, outcome.loss, val_loss,
                     config_.task == "vit" ? (", accuracy " + std::to_string(val_accuracy)).c_str() : "",
                     cumulative_flops);
    }
    agreed(world_, [&] { write_metric(record); });
    summary.final_loss = outcome.loss;
    summary.steps = step + 1;
    summary.flops = cumulative_flops;
    if ((step + 1) % config_.checkpoint_interval == 0 || step + 1 == config_.steps) {
      save_checkpoint(step + 1, elapsed_before + now_seconds() - started);
      last_checkpoint = step + 1;
    }
    if (progress && (step + 1) % std::max(1, config_.log_interval / 10) == 0) {
      const double rate = double(step + 1 - start) / (now_seconds() - started);
      std::fprintf(stderr, "\rstep %d/%d  loss %.4f  %.2f steps/s  ETA %s   ", step + 1, config_.steps, outcome.loss,
                   rate, format_duration(double(config_.steps - step - 1) / rate).c_str());
    }
  }
  if (progress) std::fputc('\n', stderr);
  agreed(world_, [&] { write_csv(); });
  summary.median_step_s = median(step_times);
  summary.wall_s = elapsed_before + now_seconds() - started;
  summary.probes = probes_;
  summary.final_mode = levels_.size() > 1 ? "multilevel (" + settings_.mode + ")" : settings_.mode;
  write_summary(summary);
  return summary;
}

}  // namespace detail

}  // namespace plait::executor
