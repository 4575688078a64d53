// The training loop of `plait-exec train`: per optimizer step, the first rank
// embeds the batch (and runs the first buffer blocks), the Program solves the
// ODE forward and adjoint (serial or MGRIT, over all ranks), the last rank's
// loss op runs the last buffer blocks and the head, and every rank updates the
// parameters it owns. The detector probes the solver every K steps.
#include "plait/executor/train.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include "../detail/backend_access.hpp"
#include "../detail/transformer.hpp"
#include "data.hpp"
#include "optimizer.hpp"
#include "plait/executor/exec.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/training/predictions.hpp"
#include "plait/training/tensor_file.hpp"
#include "task_model.hpp"

namespace plait::executor {

namespace fs = std::filesystem;
using detail::BackendAccess;
using nlohmann::json;
using schedule::PhaseSpec;
using schedule::Program;
using training::TrainConfig;

namespace {

constexpr std::uint64_t dropout_stream = 1ULL << 43;

using Settings = training::SolverSettings;

json settings_object(const Settings& settings) { return json::parse(training::settings_json(settings)); }

// Probes run twice the iterations, and at least three where skipping the
// first down-cycle's relaxation leaves the first iteration without a residual:
// the convergence factor needs two residuals.
PhaseSpec probe_phase(PhaseSpec phase) {
  if (phase.levels > 1) phase.iterations = std::max(2 * phase.iterations, 3);
  return phase;
}

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

// Rank-collective agreement: a plait::Error anywhere is an AgreedError everywhere.
template <typename Body>
void agreed(World& world, Body&& body) {
  std::optional<Error> problem;
  try {
    body();
  } catch (const Error& error) {
    problem = error;
  }
  const int reporter = world.first_failed(problem.has_value());
  if (reporter >= 0)
    throw AgreedError(problem ? *problem : Error("rank " + std::to_string(reporter), "failed"), reporter);
}

class Trainer {
 public:
  Trainer(World& world, const TrainConfig& config, const TrainOverrides& overrides)
      : world_(world), config_(config), overrides_(overrides), out_(config.out) {
    agreed(world_, [&] {
      data_ = std::make_unique<detail::TrainingData>(config_);
      if (!overrides_.predictions_path.empty())
        predictions_ = training::load_training_predictions(overrides_.predictions_path);
    });
    settings_ = training::initial_settings(config_);
    agreed(world_, [&] {
      const Program& main = program_for(settings_);
      partition_ = main.partition;
      backend_ = std::make_unique<TorchBackend>(main, world_.rank(), config_.device);
      context_ = std::make_unique<detail::ModelContext>(main.model, config_.device);
      program_for(training::serial_settings(settings_));  // checks the serial Program's split now, not at the first probe
    });
    model_ = std::make_unique<detail::TaskModel>(config_, data_->vocab(), first(), last(), *context_);
    optimizer_ = std::make_unique<detail::Optimizer>(config_.optimizer);
  }

  TrainSummary run();

 private:
  bool first() const { return world_.rank() == 0; }
  bool last() const { return world_.rank() == world_.size() - 1; }
  // Programs by settings, built once. Every Program of a run must split the
  // blocks as the first one did: each rank owns (and updates) its blocks.
  const Program& program_for(const Settings& settings, bool evaluation = false) {
    const std::string key = training::settings_json(settings) + (evaluation ? "/eval" : "");
    auto found = programs_.find(key);
    if (found != programs_.end()) return found->second;
    Program program = training::build_program(config_, settings, world_.size());
    if (!partition_.empty() && program.partition != partition_)
      throw Error("solver", "the " + settings.mode + " Program splits the ODE blocks over the ranks differently from "
                  "the first one; choose ode_layers divisible by ranks * cf^(levels-1)");
    if (evaluation) program = forward_only(program);
    return programs_.emplace(key, std::move(program)).first->second;
  }

  struct Outcome {
    schedule::RunResult result;
    double loss = 0;
    std::int64_t correct = 0, count = 0;
  };
  Outcome run_program(const Program& program, const detail::Batch& batch, bool with_gradients, int step);
  std::vector<detail::ParameterSlot> slots();
  std::vector<at::Tensor> gradient_snapshot();
  double global_sum(double local) { return world_.sum_all({local}).at(0); }
  DetectorEvent probe(int step, const detail::Batch& batch, std::vector<at::Tensor>& serial_gradient);
  void compare_gradients(const std::vector<at::Tensor>& serial, DetectorEvent& event);
  void apply_policy(DetectorEvent& event);
  std::pair<double, double> evaluate();
  void save_checkpoint(int step, double elapsed);
  int load_checkpoint(double& elapsed);
  void prepare_output();
  void write_metric(const json& record);
  void write_csv();

  World& world_;
  const TrainConfig& config_;
  const TrainOverrides& overrides_;
  fs::path out_;
  std::unique_ptr<detail::TrainingData> data_;
  Settings settings_;
  bool detector_active_ = true;
  std::map<std::string, Program> programs_;
  std::vector<std::int32_t> partition_;
  std::unique_ptr<TorchBackend> backend_;
  std::unique_ptr<detail::ModelContext> context_;
  std::unique_ptr<detail::TaskModel> model_;
  std::unique_ptr<detail::Optimizer> optimizer_;
  std::vector<DetectorEvent> probes_;
  std::map<std::string, double> predictions_;  // settings_json -> predicted step of the ODE solve
};

Trainer::Outcome Trainer::run_program(const Program& program, const detail::Batch& batch, bool with_gradients,
                                      int step) {
  backend_->clear_states();
  backend_->zero_gradients();
  for (auto& p : model_->parameters()) p.tensor.mutable_grad() = at::Tensor();
  const double dropout = with_gradients ? config_.model.dropout : 0.0;
  const std::uint64_t mask_seed = detail::mix_seed(config_.seed, dropout_stream + std::uint64_t(step));
  BackendAccess::set_dropout(*backend_, dropout, mask_seed);
  model_->set_dropout(dropout, mask_seed);

  at::Tensor front;
  if (first()) {
    at::AutoGradMode grad(with_gradients);
    front = model_->front(batch.inputs);
    BackendAccess::set_input(*backend_, front.detach());
  }
  Outcome outcome;
  if (last()) {
    BackendAccess::set_loss(*backend_, [&](const at::Tensor& output) {
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
  {
    auto comm = world_.make_comm();
    outcome.result = schedule::interpret(program, world_.rank(), *backend_, *comm);
  }  // the comm waits for its sends here
  if (first() && with_gradients) {
    const at::Tensor* adjoint = BackendAccess::state(*backend_, schedule::Buffer{schedule::Space::w, 0, 0});
    if (!adjoint) throw Error("rank 0", "the Program left no adjoint at the ODE's input (w[0][0])");
    front.backward(*adjoint);
  }
  const auto totals = world_.sum_all({outcome.loss, double(outcome.correct), double(outcome.count)});
  outcome.loss = totals[0];
  outcome.correct = std::int64_t(totals[1]);
  outcome.count = std::int64_t(totals[2]);
  return outcome;
}

// The parameters this rank owns and their gradients of the last run.
std::vector<detail::ParameterSlot> Trainer::slots() {
  std::vector<detail::ParameterSlot> out;
  const int offset = config_.model.buffer_before;
  for (int block = partition_[world_.rank()]; block < partition_[world_.rank() + 1]; ++block) {
    auto& parameters = BackendAccess::parameters(*backend_, block);
    const auto* gradients = BackendAccess::gradients(*backend_, block);
    for (std::size_t i = 0; i < parameters.size(); ++i)
      out.push_back({"block" + std::to_string(offset + block) + "." + std::to_string(i), parameters[i],
                     gradients ? (*gradients)[i] : at::Tensor()});
  }
  for (auto& p : model_->parameters()) out.push_back({p.name, p.tensor, p.tensor.grad()});
  return out;
}

std::vector<at::Tensor> Trainer::gradient_snapshot() {
  std::vector<at::Tensor> copies;
  for (const auto& slot : slots()) copies.push_back(slot.gradient.defined() ? slot.gradient.detach().clone() : at::Tensor());
  return copies;
}

// Convergence factors of the solves at twice the iterations, and the serial
// gradient of the same batch (for compare_gradients after the step's own solve).
DetectorEvent Trainer::probe(int step, const detail::Batch& batch, std::vector<at::Tensor>& serial_gradient) {
  DetectorEvent event{.step = step};
  Settings doubled = settings_;
  doubled.forward = probe_phase(settings_.forward);
  doubled.adjoint = probe_phase(settings_.adjoint);
  const Outcome probed = run_program(program_for(doubled), batch, true, step);
  auto factor = [](const std::vector<double>& norms) {
    return norms.size() >= 2 && norms[norms.size() - 2] > 0 ? norms.back() / norms[norms.size() - 2] : 0.0;
  };
  event.forward_factor = factor(probed.result.forward_residual_norms);
  event.adjoint_factor = factor(probed.result.adjoint_residual_norms);
  run_program(program_for(training::serial_settings(settings_)), batch, true, step);
  serial_gradient = gradient_snapshot();
  return event;
}

// Relative error and cosine of this step's gradient (in the slots now)
// against the serial gradient of the same batch, over all ranks.
void Trainer::compare_gradients(const std::vector<at::Tensor>& serial, DetectorEvent& event) {
  const auto mine = slots();
  double dot = 0, norm = 0, serial_norm = 0, difference = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (!mine[i].gradient.defined() || !serial[i].defined()) continue;
    const at::Tensor g = mine[i].gradient.to(at::kDouble), e = serial[i].to(at::kDouble);
    dot += (g * e).sum().item<double>();
    norm += g.pow(2).sum().item<double>();
    serial_norm += e.pow(2).sum().item<double>();
    difference += (g - e).pow(2).sum().item<double>();
  }
  const auto sums = world_.sum_all({dot, norm, serial_norm, difference});
  event.gradient_relative_error = sums[2] > 0 ? std::sqrt(sums[3] / sums[2]) : 0;
  event.gradient_cosine = sums[1] > 0 && sums[2] > 0 ? sums[0] / std::sqrt(sums[1] * sums[2]) : 0;
}

void Trainer::apply_policy(DetectorEvent& event) {
  const double factor = std::max(event.forward_factor, event.adjoint_factor);
  if (!(factor > config_.detector.threshold)) {
    event.action = "none";
    return;
  }
  if (config_.detector.policy == "switch-to-serial") {
    settings_ = training::serial_settings(settings_);
    detector_active_ = false;
    event.action = "switch-to-serial";
    return;
  }
  bool raised = false;
  for (PhaseSpec* phase : {&settings_.forward, &settings_.adjoint})
    if (phase->levels > 1 && phase->iterations < config_.detector.max_iterations) {
      phase->iterations += 1;
      raised = true;
    }
  event.action = raised ? "raise-iterations" : "at-cap";
}

// Mean loss (and accuracy) of the exact model on the evaluation batches: the
// serial forward, whatever the training mode.
std::pair<double, double> Trainer::evaluate() {
  const Program& program = program_for(training::serial_settings(settings_), true);
  double loss = 0;
  std::int64_t correct = 0, count = 0;
  const auto batches = data_->evaluation_batches();
  for (const auto& batch : batches) {
    const Outcome outcome = run_program(program, batch, false, 0);
    loss += outcome.loss;
    correct += outcome.correct;
    count += outcome.count;
  }
  return {loss / double(batches.size()), count > 0 ? double(correct) / double(count) : 0.0};
}

// Each rank writes its tensors into checkpoint.partial/, rank 0 adds
// state.json and renames the directory onto checkpoint/ (the previous one
// waits as checkpoint.old until then): a kill at any moment leaves a whole
// checkpoint under one of the two names.
void Trainer::save_checkpoint(int step, double elapsed) {
  const fs::path partial = out_ / "checkpoint.partial", final_dir = out_ / "checkpoint", old = out_ / "checkpoint.old";
  agreed(world_, [&] {
    if (first()) {
      fs::remove_all(partial);
      fs::create_directories(partial);
    }
  });
  agreed(world_, [&] {
    training::TensorFile file;
    file.meta_json = json{{"step", step}, {"rank", world_.rank()}, {"optimizer_steps", optimizer_->steps_taken()}}.dump();
    auto add = [&](const std::string& name, const at::Tensor& tensor) {
      const at::Tensor host = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
      file.tensors.push_back({name, host.sizes().vec(),
                              std::vector<float>(host.data_ptr<float>(), host.data_ptr<float>() + host.numel())});
    };
    for (const auto& slot : slots()) {
      add(slot.name, slot.parameter);
      for (const auto& name : optimizer_->state_names(slot.name)) {
        auto found = optimizer_->state().find(name);
        add(name, found != optimizer_->state().end() ? found->second : at::zeros_like(slot.parameter));
      }
    }
    training::save_tensor_file(file, (partial / ("rank-" + std::to_string(world_.rank()) + ".bin")).string());
  });
  agreed(world_, [&] {
    if (!first()) return;
    const json state{{"format", "plait.train-state"}, {"version", 1}, {"step", step}, {"ranks", world_.size()},
                     {"settings", settings_object(settings_)}, {"detector_active", detector_active_},
                     {"elapsed_s", elapsed}, {"config", json::parse(training::dump_train_config(config_))}};
    write_text_file((partial / "state.json").string(), state.dump(2));
    fs::remove_all(old);
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(partial, final_dir);
    fs::remove_all(old);
  });
}

// Returns the step to continue from.
int Trainer::load_checkpoint(double& elapsed) {
  int step = 0;
  agreed(world_, [&] {
    fs::path dir = out_ / "checkpoint";
    if (!fs::exists(dir / "state.json") && fs::exists(out_ / "checkpoint.old" / "state.json")) dir = out_ / "checkpoint.old";
    const std::string state_path = (dir / "state.json").string();
    if (!fs::exists(state_path)) throw Error(out_.string(), "--resume: no checkpoint here");
    json state;
    try {
      state = json::parse(read_text_file(state_path));
      if (state.at("format") != "plait.train-state" || state.at("version") != 1) throw Error(state_path, "not a plait training state");
      if (state.at("ranks").get<int>() != world_.size())
        throw Error(state_path, "written by " + std::to_string(state.at("ranks").get<int>()) + " ranks, resumed on " +
                                    std::to_string(world_.size()));
      const json saved = state.at("config"), now = json::parse(training::dump_train_config(config_));
      for (const char* part : {"task", "model", "seed"})
        if (saved.at(part) != now.at(part))
          throw Error(state_path, std::string("the checkpoint's \"") + part + "\" differs from this config's");
      step = state.at("step").get<int>();
      elapsed = state.at("elapsed_s").get<double>();
      settings_ = training::parse_settings_json(state.at("settings").dump(), state_path);
      detector_active_ = state.at("detector_active").get<bool>();
    } catch (const json::exception& error) {
      throw Error(state_path, std::string("malformed: ") + error.what());
    }
    const std::string tensors_path = (dir / ("rank-" + std::to_string(world_.rank()) + ".bin")).string();
    const training::TensorFile file = training::load_tensor_file(tensors_path);
    std::map<std::string, const training::NamedTensor*> by_name;
    for (const auto& tensor : file.tensors) by_name[tensor.name] = &tensor;
    at::NoGradGuard no_grad;
    auto restore = [&](const std::string& name, at::Tensor target) {
      auto found = by_name.find(name);
      if (found == by_name.end()) throw Error(tensors_path, "has no tensor \"" + name + "\"");
      if (at::IntArrayRef(found->second->shape) != target.sizes())
        throw Error(tensors_path, "tensor \"" + name + "\" has the wrong shape for this model");
      const at::Tensor host = at::from_blob(const_cast<float*>(found->second->values.data()), target.sizes(), at::kFloat);
      target.copy_(host);
    };
    for (const auto& slot : slots()) {
      restore(slot.name, slot.parameter);
      for (const auto& name : optimizer_->state_names(slot.name)) {
        at::Tensor& state_tensor = optimizer_->state()[name];
        if (!state_tensor.defined()) state_tensor = at::zeros_like(slot.parameter);
        restore(name, state_tensor);
      }
    }
    optimizer_->set_steps_taken(json::parse(file.meta_json).value("optimizer_steps", std::int64_t(step)));
  });
  return step;
}

// A fresh run refuses an output directory holding another run, unless --force.
void Trainer::prepare_output() {
  agreed(world_, [&] {
    if (!first()) return;
    const bool has_run = fs::exists(out_ / "metrics.jsonl") || fs::exists(out_ / "checkpoint");
    if (has_run && !overrides_.force)
      throw Error(out_.string(), "holds another run's results (use --resume to continue it, --force to replace it)");
    fs::create_directories(out_);
    for (const char* name : {"metrics.jsonl", "metrics.csv", "summary.json"}) fs::remove(out_ / name);
    for (const char* name : {"checkpoint", "checkpoint.old", "checkpoint.partial"}) fs::remove_all(out_ / name);
  });
}

void Trainer::write_metric(const json& record) {
  if (!first()) return;
  std::ofstream out(out_ / "metrics.jsonl", std::ios::app);
  out << record.dump() << '\n';
  if (!out.flush()) throw Error((out_ / "metrics.jsonl").string(), "write failed");
}

// metrics.csv from metrics.jsonl (a resumed run's lines included).
void Trainer::write_csv() {
  if (!first()) return;
  std::ifstream in(out_ / "metrics.jsonl");
  std::ostringstream csv;
  csv << "step,loss,lr,grad_norm,time_s,step_time_s,mode,forward_levels,forward_iterations,adjoint_levels,"
         "adjoint_iterations,val_loss,val_accuracy,predicted_step_s\n";
  std::string line;
  auto number = [](const json& record, const char* key) {
    return record.contains(key) && record[key].is_number() ? json(record[key]).dump() : std::string();
  };
  while (std::getline(in, line)) {
    const json r = json::parse(line);
    if (!r.contains("loss")) continue;  // event lines
    const json& s = r.at("settings");
    csv << r["step"] << ',' << number(r, "loss") << ',' << number(r, "lr") << ',' << number(r, "grad_norm") << ','
        << number(r, "time_s") << ',' << number(r, "step_time_s") << ',' << s["mode"].get<std::string>() << ','
        << s["forward"]["levels"] << ',' << s["forward"]["iterations"] << ',' << s["adjoint"]["levels"] << ','
        << s["adjoint"]["iterations"] << ',' << number(r, "val_loss") << ',' << number(r, "val_accuracy") << ','
        << number(r, "predicted_step_s") << '\n';
  }
  write_text_file((out_ / "metrics.csv").string(), csv.str());
}

TrainSummary Trainer::run() {
  TrainSummary summary;
  double elapsed_before = 0;
  int start = 0;
  if (overrides_.resume) {
    start = load_checkpoint(elapsed_before);
    agreed(world_, [&] {  // keep metrics up to the checkpoint: the resumed run writes the rest
      if (!first()) return;
      std::ifstream in(out_ / "metrics.jsonl");
      std::string kept, line;
      while (std::getline(in, line)) {
        const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);  // a kill may tear the last line
        if (record.is_object() && record.value("step", 0) <= start) kept += line + "\n";
      }
      write_text_file((out_ / "metrics.jsonl").string(), kept);
    });
  } else {
    prepare_output();
  }
  if (first())
    std::fprintf(stderr, "plait-exec train: %s, %d ODE + %d buffer blocks on %d rank(s), %s; %s\n", config_.task.c_str(),
                 config_.model.ode_layers, config_.model.buffer_before + config_.model.buffer_after, world_.size(),
                 training::settings_json(settings_).c_str(), data_->describe().c_str());
  const bool progress = first() && overrides_.show_progress && ::isatty(2) && !std::getenv("CI");
  std::vector<double> step_times;
  const double started = now_seconds();
  int last_checkpoint = start;
  for (int step = start; step < config_.steps; ++step) {
    const detail::Batch batch = data_->train_batch(step);
    const bool probing = detector_active_ && settings_.mode == "mgrit" && config_.detector.interval > 0 &&
                         step > 0 && step % config_.detector.interval == 0;
    std::optional<DetectorEvent> event;
    std::vector<at::Tensor> serial_gradient;
    if (probing) event = probe(step, batch, serial_gradient);

    world_.barrier();
    const double step_start = now_seconds();
    const Settings used = settings_;
    const Outcome outcome = run_program(program_for(settings_), batch, true, step);
    auto parameters = slots();
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
    const double lr = detail::learning_rate(config_.optimizer, step, config_.steps);
    optimizer_->step(parameters, lr);
    world_.barrier();
    const double step_time = now_seconds() - step_start;
    if (!probing) step_times.push_back(step_time);

    json record{{"step", step + 1}, {"loss", outcome.loss}, {"lr", lr}, {"grad_norm", grad_norm},
                {"step_time_s", step_time}, {"time_s", elapsed_before + now_seconds() - started},
                {"settings", settings_object(used)}};
    if (auto predicted = predictions_.find(training::settings_json(used)); predicted != predictions_.end())
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
        std::fprintf(stderr, "%sstep %d/%d  loss %.4f  validation loss %.4f%s\n", progress ? "\n" : "", step + 1,
                     config_.steps, outcome.loss, val_loss,
                     config_.task == "vit" ? (", accuracy " + std::to_string(val_accuracy)).c_str() : "");
    }
    agreed(world_, [&] { write_metric(record); });
    summary.final_loss = outcome.loss;
    summary.steps = step + 1;
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
  summary.final_mode = settings_.mode;
  if (first()) {
    json probes = json::array();
    for (const auto& p : probes_)
      probes.push_back({{"step", p.step}, {"forward_factor", p.forward_factor}, {"adjoint_factor", p.adjoint_factor},
                        {"gradient_relative_error", p.gradient_relative_error},
                        {"gradient_cosine", p.gradient_cosine}, {"action", p.action}});
    auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(); };
    const json out{{"steps", summary.steps}, {"ranks", world_.size()}, {"final_loss", summary.final_loss},
                   {"validation_loss", optional(summary.validation_loss)},
                   {"validation_accuracy", optional(summary.validation_accuracy)},
                   {"median_step_s", summary.median_step_s}, {"wall_s", summary.wall_s},
                   {"final_settings", settings_object(settings_)}, {"probes", probes}};
    agreed(world_, [&] { write_text_file((out_ / "summary.json").string(), out.dump(2)); });
  } else {
    agreed(world_, [] {});
  }
  return summary;
}

}  // namespace

training::TrainConfig apply_overrides(training::TrainConfig config, const TrainOverrides& overrides) {
  if (overrides.out) config.out = *overrides.out;
  if (overrides.device) config.device = *overrides.device;
  if (overrides.mode) {
    if (*overrides.mode != "serial" && *overrides.mode != "mgrit") throw Error("--mode", "must be serial or mgrit");
    config.solver.mode = *overrides.mode;
    if (config.solver.mode == "serial") config.detector.interval = 0;
  }
  if (overrides.steps) {
    if (*overrides.steps < 1) throw Error("--steps", "must be at least 1");
    config.steps = *overrides.steps;
    config.optimizer.warmup_steps = std::min(config.optimizer.warmup_steps, config.steps);
  }
  if (overrides.threads < 1) throw Error("--threads", "must be at least 1");
  return config;
}

TrainConfig load_train_config_on_all(World& world, const std::string& path, const TrainOverrides& overrides) {
  TrainConfig config;
  agreed(world, [&] { config = apply_overrides(training::load_train_config(path), overrides); });
  return config;
}

TrainSummary train(World& world, const TrainConfig& config, const TrainOverrides& overrides) {
  set_up_compute(overrides.threads);
  Trainer trainer(world, config, overrides);
  return trainer.run();
}

std::string summary_text(const TrainSummary& s) {
  std::ostringstream out;
  out << "trained " << s.steps << " steps: loss " << s.final_loss;
  if (s.validation_loss) out << ", validation loss " << *s.validation_loss;
  if (s.validation_accuracy) out << ", accuracy " << *s.validation_accuracy;
  out << "\n  median step " << s.median_step_s << " s, wall " << s.wall_s << " s, final mode " << s.final_mode;
  out << ", " << s.probes.size() << " detector probe(s)\n";
  for (const auto& p : s.probes)
    out << "  probe at step " << p.step << ": factors " << p.forward_factor << " / " << p.adjoint_factor
        << ", gradient rel. error " << p.gradient_relative_error << ", cosine " << p.gradient_cosine << ": "
        << p.action << "\n";
  return out.str();
}

}  // namespace plait::executor
