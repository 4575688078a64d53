// What a training run leaves in its output directory: metrics.jsonl and
// metrics.csv, and the checkpoint a resumed run continues from.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../detail/backend_access.hpp"
#include "plait/schedule/files.hpp"
#include "plait/training/tensor_file.hpp"
#include "trainer.hpp"

namespace plait::executor::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Level l > 0 keeps its optimizer state under "level<l>." names (its own
// moments of the shared parameters too); level 0's names are unprefixed.
std::string level_prefix(int level) { return level == 0 ? "" : "level" + std::to_string(level) + "."; }

}  // namespace

// Each rank writes its tensors into checkpoint.partial/, rank 0 adds
// state.json and renames the directory onto checkpoint/ (the previous one
// waits as checkpoint.old until then): a kill at any moment leaves a whole
// checkpoint under one of the two names. Multilevel runs save at cycle ends,
// where the coarse levels' parameters are restricted afresh anyway: only
// their optimizer state is kept.
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
    json level_steps = json::array();
    for (const Level& level : levels_) level_steps.push_back(level.optimizer->steps_taken());
    file.meta_json = json{{"step", step}, {"rank", world_.rank()}, {"optimizer_steps", level_steps[0]},
                          {"level_optimizer_steps", level_steps}}.dump();
    auto add = [&](const std::string& name, const at::Tensor& tensor) {
      const at::Tensor host = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
      file.tensors.push_back({name, host.sizes().vec(),
                              std::vector<float>(host.data_ptr<float>(), host.data_ptr<float>() + host.numel())});
    };
    for (Level& level : levels_)
      for (const auto& slot : slots(level)) {
        if (level.index == 0) add(slot.name, slot.parameter);
        for (const auto& name : level.optimizer->state_names(slot.name)) {
          auto found = level.optimizer->state().find(name);
          add(level_prefix(level.index) + name,
              found != level.optimizer->state().end() ? found->second : at::zeros_like(slot.parameter));
        }
      }
    training::save_tensor_file(file, (partial / ("rank-" + std::to_string(world_.rank()) + ".bin")).string());
  });
  agreed(world_, [&] {
    if (!first()) return;
    const json state{{"format", "plait.train-state"}, {"version", 1}, {"step", step}, {"ranks", world_.size()},
                     {"settings", settings_object(settings_)},
                     {"detector_active", detector_active_}, {"elapsed_s", elapsed},
                     {"config", json::parse(training::dump_train_config(config_))}};
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
      for (const char* part : {"task", "model", "seed", "solver"})
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
    const json meta = json::parse(file.meta_json);
    for (Level& level : levels_) {
      for (const auto& slot : slots(level)) {
        if (level.index == 0) restore(slot.name, slot.parameter);
        for (const auto& name : level.optimizer->state_names(slot.name)) {
          at::Tensor& state_tensor = level.optimizer->state()[name];
          if (!state_tensor.defined()) state_tensor = at::zeros_like(slot.parameter);
          restore(level_prefix(level.index) + name, state_tensor);
        }
      }
      const json steps = meta.value("level_optimizer_steps", json::array({meta.value("optimizer_steps", std::int64_t(step))}));
      if (std::size_t(level.index) >= steps.size()) throw Error(tensors_path, "has no optimizer steps of level " + std::to_string(level.index));
      level.optimizer->set_steps_taken(steps[level.index].get<std::int64_t>());
    }
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

// A resumed run keeps the metrics up to its checkpoint and writes the rest.
std::pair<double, double> Trainer::keep_metrics_up_to(int step) {
  double cumulative_flops = 0, training_time = 0;
  agreed(world_, [&] {
    if (!first()) return;
    std::ifstream in(out_ / "metrics.jsonl");
    std::string kept, line;
    while (std::getline(in, line)) {
      const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);  // a kill may tear the last line
      if (!record.is_object() || record.value("step", 0) > step) continue;
      kept += line + "\n";
      cumulative_flops = record.value("cumulative_flops", cumulative_flops);
      training_time = record.value("training_time_s", training_time);
    }
    write_text_file((out_ / "metrics.jsonl").string(), kept);
  });
  return {cumulative_flops, training_time};
}

void Trainer::write_metric(const json& record) {
  if (!first()) return;
  const fs::path path = out_ / "metrics.jsonl";
  std::ofstream out(path, std::ios::app);
  out << record.dump() << '\n';
  if (!out.flush()) throw Error(path.string(), "write failed");
}

// metrics.csv from metrics.jsonl (a resumed run's lines included).
void Trainer::write_csv() {
  if (!first()) return;
  std::ifstream in(out_ / "metrics.jsonl");
  std::ostringstream csv;
  csv << "step,loss,lr,grad_norm,time_s,step_time_s,mode,forward_levels,forward_iterations,adjoint_levels,"
         "adjoint_iterations,val_loss,val_accuracy,predicted_step_s,level,flops,cumulative_flops,training_time_s\n";
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
        << number(r, "predicted_step_s") << ',' << number(r, "level") << ',' << number(r, "flops") << ','
        << number(r, "cumulative_flops") << ',' << number(r, "training_time_s") << '\n';
  }
  write_text_file((out_ / "metrics.csv").string(), csv.str());
}

// summary.json: the run's figures and every detector probe (collective).
void Trainer::write_summary(const TrainSummary& summary) {
  json probes = json::array();
  for (const auto& p : probes_)
    probes.push_back({{"step", p.step}, {"forward_factor", p.forward_factor}, {"adjoint_factor", p.adjoint_factor},
                      {"gradient_relative_error", p.gradient_relative_error}, {"gradient_cosine", p.gradient_cosine},
                      {"action", p.action}});
  auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(); };
  const json out{{"steps", summary.steps}, {"ranks", world_.size()}, {"final_loss", summary.final_loss},
                 {"validation_loss", optional(summary.validation_loss)},
                 {"validation_accuracy", optional(summary.validation_accuracy)},
                 {"median_step_s", summary.median_step_s}, {"wall_s", summary.wall_s}, {"flops", summary.flops},
                 {"final_settings", settings_object(settings_)}, {"probes", probes}};
  agreed(world_, [&] {
    if (first()) write_text_file((out_ / "summary.json").string(), out.dump(2));
  });
}

}  // namespace plait::executor::detail
