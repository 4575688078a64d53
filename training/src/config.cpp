#include "plait/training/config.hpp"

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/training/word_tokenizer.hpp"

namespace plait::training {
namespace {

using nlohmann::json;

class Problems {
 public:
  void add(const std::string& pointer, const std::string& why) { list_.push_back(pointer + ": " + why); }
  std::string joined() const {
    std::string text;
    for (const auto& problem : list_) text += (text.empty() ? "" : "; ") + problem;
    return text;
  }
  bool empty() const { return list_.empty(); }

 private:
  std::vector<std::string> list_;
};

// One object's fields: each key has a reader; unknown keys are problems.
using FieldReader = std::function<void(const json&, const std::string&)>;

void read_object(const json& value, const std::string& pointer, const std::map<std::string, FieldReader>& fields,
                 Problems& problems) {
  if (!value.is_object()) return problems.add(pointer.empty() ? "/" : pointer, "must be an object");
  for (const auto& [key, field] : value.items()) {
    auto reader = fields.find(key);
    if (reader == fields.end()) problems.add(pointer + "/" + key, "unknown field");
    else reader->second(field, pointer + "/" + key);
  }
}

struct Readers {
  Problems& problems;

  FieldReader integer(std::int32_t& out, std::int64_t minimum, std::int64_t maximum = 1 << 30) {
    return [&out, minimum, maximum, this](const json& v, const std::string& p) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < minimum || v.get<std::int64_t>() > maximum)
        return problems.add(p, "must be an integer in " + std::to_string(minimum) + ".." + std::to_string(maximum));
      out = v.get<std::int32_t>();
    };
  }
  FieldReader seed(std::uint64_t& out) {
    return [&out, this](const json& v, const std::string& p) {
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
        return problems.add(p, "must be a non-negative integer");
      out = v.get<std::uint64_t>();
    };
  }
  // A finite number in [minimum, maximum] (open at `minimum` when `above`).
  FieldReader number(double& out, double minimum, double maximum, bool above = false) {
    return [&out, minimum, maximum, above, this](const json& v, const std::string& p) {
      const bool ok = v.is_number() && std::isfinite(v.get<double>()) &&
                      (above ? v.get<double>() > minimum : v.get<double>() >= minimum) && v.get<double>() <= maximum;
      if (!ok)
        return problems.add(p, std::string("must be a number ") + (above ? "> " : ">= ") + json(minimum).dump() +
                                   " and <= " + json(maximum).dump());
      out = v.get<double>();
    };
  }
  FieldReader choice(std::string& out, std::set<std::string> choices) {
    return [&out, choices, this](const json& v, const std::string& p) {
      if (!v.is_string() || !choices.count(v.get<std::string>())) {
        std::string list;
        for (const auto& c : choices) list += (list.empty() ? "" : " or ") + ("\"" + c + "\"");
        return problems.add(p, "must be " + list);
      }
      out = v.get<std::string>();
    };
  }
  FieldReader boolean(bool& out) {
    return [&out, this](const json& v, const std::string& p) {
      if (!v.is_boolean()) return problems.add(p, "must be true or false");
      out = v.get<bool>();
    };
  }
  FieldReader text(std::string& out, bool may_be_empty = false) {
    return [&out, may_be_empty, this](const json& v, const std::string& p) {
      if (!v.is_string() || (!may_be_empty && v.get<std::string>().empty()))
        return problems.add(p, "must be a non-empty string");
      out = v.get<std::string>();
    };
  }
  FieldReader phase(schedule::PhaseSpec& out) {
    return [&out, this](const json& v, const std::string& p) {
      std::string relax = std::string(schedule::to_string(out.relax));
      read_object(v, p,
                  {{"levels", integer(out.levels, 1, 24)},
                   {"cf", integer(out.coarsening_factor, 2, 1 << 20)},
                   {"relax", choice(relax, {"F", "FCF"})},
                   {"iterations", integer(out.iterations, 1, 1000)}},
                  problems);
      out.relax = schedule::parse_relax(relax);
    };
  }
};

void check_multilevel(const TrainConfig& c, Problems& problems) {
  const auto& ml = c.solver.multilevel;
  if (c.detector.interval > 0)
    problems.add("/detector/interval", "the detector watches single-level MGRIT runs: set interval 0 with mode \"multilevel\"");
  std::int64_t blocks = c.model.ode_layers;
  for (int level = 1; level < ml.levels; ++level) {
    if (blocks % ml.cf != 0)
      return problems.add("/solver/cf", std::to_string(ml.cf) + " must divide the " + std::to_string(blocks) +
                                            " ODE blocks of level " + std::to_string(level - 1) + " (ode_layers " +
                                            std::to_string(c.model.ode_layers) + ", levels " + std::to_string(ml.levels) + ")");
    blocks /= ml.cf;
  }
  if (ml.cf != 2 && (ml.restriction == "even" || ml.restriction == "odd" || ml.restriction == "alternate"))
    problems.add("/solver/restriction", "\"" + ml.restriction + "\" keeps one block of each pair: it needs cf 2, not " +
                                            std::to_string(ml.cf));
  const std::int64_t cycle = ml.levels == 1 ? 1 : ml.coarse_steps + std::int64_t(ml.levels - 1) * ml.fine_steps;
  if (c.steps % cycle != 0)
    problems.add("/steps", "must be a whole number of cycles of " + std::to_string(cycle) +
                               " optimizer steps (coarse_steps + (levels - 1) * fine_steps)");
  if (c.checkpoint_interval % cycle != 0)
    problems.add("/checkpoint_interval", "must be a whole number of cycles of " + std::to_string(cycle) + " optimizer steps");
}

void check_consistency(const TrainConfig& c, Problems& problems, bool multilevel_fields) {
  const auto& m = c.model;
  if (c.solver.mode == "multilevel") check_multilevel(c, problems);
  else if (multilevel_fields)
    problems.add("/solver", "levels, cf, coarse_steps, fine_steps, correction, restriction, level_solver, coarse_lr_factor, "
                            "coarse_batch, line_search and momentum belong to mode \"multilevel\"");
  if (m.d_model % m.heads != 0) problems.add("/model/heads", "must divide d_model (" + std::to_string(m.d_model) + ")");
  if (c.task == "vit" && vit_image_side % m.patch != 0)
    problems.add("/model/patch", "must divide the image side " + std::to_string(vit_image_side));
  if (c.detector.interval > 0 && c.solver.mode == "serial")
    problems.add("/detector/interval", "the detector watches MGRIT solves: set solver.mode \"mgrit\" or interval 0");
  if (c.detector.policy == "raise-iterations" &&
      (c.detector.max_iterations < c.solver.forward.iterations || c.detector.max_iterations < c.solver.adjoint.iterations))
    problems.add("/detector/max_iterations", "must be at least the configured iterations");
  if (c.optimizer.warmup_steps > c.steps) problems.add("/optimizer/warmup_steps", "must not exceed steps");
  const double tokens = double(m.batch) * m.seq * m.d_model;
  if (tokens > 1e10) problems.add("/model", "batch * seq * d_model is above 1e10 elements per state");
}

}  // namespace

TrainConfig parse_train_config(const std::string& text, const std::string& origin) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& error) {  // parse errors, and numbers beyond double (1e999)
    throw Error(origin, std::string("not valid JSON: ") + error.what());
  }
  TrainConfig c;
  Problems problems;
  Readers r{problems};
  if (!document.is_object()) throw Error(origin, "must be a JSON object {\"format\": \"plait.train\", ...}");
  if (document.value("format", json()) != "plait.train") problems.add("/format", "must be \"plait.train\"");
  if (document.value("version", json()) != 1) problems.add("/version", "must be 1");
  auto& m = c.model;
  auto& o = c.optimizer;
  auto& ml = c.solver.multilevel;
  bool multilevel_fields = false;
  // A multilevel field's reader, noting that one was given.
  auto multilevel = [&](FieldReader reader) -> FieldReader {
    return [&multilevel_fields, reader](const json& v, const std::string& p) {
      multilevel_fields = true;
      reader(v, p);
    };
  };
  const std::map<std::string, FieldReader> fields = {
      {"format", [](const json&, const std::string&) {}},
      {"version", [](const json&, const std::string&) {}},
      {"description",
       [&](const json& v, const std::string& p) {
         if (!v.is_string()) problems.add(p, "must be a string");
       }},
      {"task", r.choice(c.task, {"char-lm", "vit"})},
      {"data",
       [&](const json& v, const std::string& p) {
         read_object(v, p,
                     {{"corpus", r.text(c.data.corpus)},
                      {"dataset", r.text(c.data.dataset)},
                      {"validation_fraction", r.number(c.data.validation_fraction, 0, 0.5, true)},
                      {"tokenizer", r.choice(c.data.tokenizer, {"char", "word"})},
                      {"vocabulary", r.integer(c.data.vocabulary, min_word_vocabulary, max_word_vocabulary)}},
                     problems);
       }},
      {"model",
       [&](const json& v, const std::string& p) {
         read_object(v, p,
                     {{"d_model", r.integer(m.d_model, 1, 1 << 16)},
                      {"heads", r.integer(m.heads, 1, 1024)},
                      {"mlp_ratio", r.integer(m.mlp_ratio, 1, 64)},
                      {"seq", r.integer(m.seq, 1, 1 << 16)},
                      {"batch", r.integer(m.batch, 1, 1 << 16)},
                      {"ode_layers", r.integer(m.ode_layers, 1, 1 << 16)},
                      {"buffer_before", r.integer(m.buffer_before, 0, 1024)},
                      {"buffer_after", r.integer(m.buffer_after, 0, 1024)},
                      {"tstop", r.number(m.tstop, 0, 1e6, true)},
                      {"init", r.choice(m.init, {"normal", "pytorch", "depth-scaled"})},
                      {"dropout", r.number(m.dropout, 0, 0.9)},
                      {"patch", r.integer(m.patch, 1, vit_image_side)}},
                     problems);
       }},
      {"solver",
       [&](const json& v, const std::string& p) {
         read_object(v, p,
                     {{"mode", r.choice(c.solver.mode, {"serial", "mgrit", "multilevel"})},
                      {"forward", r.phase(c.solver.forward)},
                      {"adjoint", r.phase(c.solver.adjoint)},
                      {"levels", multilevel(r.integer(ml.levels, 1, 16))},
                      {"cf", multilevel(r.integer(ml.cf, 2, 1 << 16))},
                      {"coarse_steps", multilevel(r.integer(ml.coarse_steps, 0, 100000))},
                      {"fine_steps", multilevel(r.integer(ml.fine_steps, 1, 100000))},
                      {"correction", multilevel(r.boolean(ml.correction))},
                      {"restriction", multilevel(r.choice(ml.restriction, {"injection", "average", "even", "odd", "alternate"}))},
                      {"level_solver", multilevel(r.choice(ml.level_solver, {"serial", "mgrit"}))},
                      {"coarse_lr_factor", multilevel(r.number(ml.coarse_lr_factor, 0, 10, true))},
                      {"coarse_batch", multilevel(r.choice(ml.coarse_batch, {"fresh", "cycle"}))},
                      {"line_search", multilevel(r.boolean(ml.line_search))},
                      {"momentum", multilevel(r.choice(ml.momentum, {"keep", "reset", "restrict"}))}},
                     problems);
       }},
      {"optimizer",
       [&](const json& v, const std::string& p) {
         read_object(v, p,
                     {{"kind", r.choice(o.kind, {"adamw", "sgd"})},
                      {"lr", r.number(o.lr, 0, 10, true)},
                      {"weight_decay", r.number(o.weight_decay, 0, 10)},
                      {"beta1", r.number(o.beta1, 0, 0.999999)},
                      {"beta2", r.number(o.beta2, 0, 0.999999)},
                      {"eps", r.number(o.eps, 0, 1, true)},
                      {"momentum", r.number(o.momentum, 0, 0.999999)},
                      {"warmup_steps", r.integer(o.warmup_steps, 0)},
                      {"min_lr_ratio", r.number(o.min_lr_ratio, 0, 1)},
                      {"clip_norm", r.number(o.clip_norm, 0, 1e9)}},
                     problems);
       }},
      {"detector",
       [&](const json& v, const std::string& p) {
         read_object(v, p,
                     {{"interval", r.integer(c.detector.interval, 0)},
                      {"threshold", r.number(c.detector.threshold, 0, 1e3, true)},
                      {"policy", r.choice(c.detector.policy, {"switch-to-serial", "raise-iterations"})},
                      {"max_iterations", r.integer(c.detector.max_iterations, 1, 1000)}},
                     problems);
       }},
      {"steps", r.integer(c.steps, 1, 100000000)},
      {"seed", r.seed(c.seed)},
      {"eval_interval", r.integer(c.eval_interval, 1)},
      {"eval_batches", r.integer(c.eval_batches, 0, 1000000)},
      {"checkpoint_interval", r.integer(c.checkpoint_interval, 1)},
      {"log_interval", r.integer(c.log_interval, 1)},
      {"device", r.text(c.device)},
      {"out", r.text(c.out)},
      {"profile", r.text(c.profile, true)},
  };
  read_object(document, "", fields, problems);
  if (c.task == "vit") m.seq = (vit_image_side / m.patch) * (vit_image_side / m.patch) + 1;
  if (problems.empty()) check_consistency(c, problems, multilevel_fields);
  if (!problems.empty()) throw Error(origin, problems.joined());
  return c;
}

TrainConfig load_train_config(const std::string& path) { return parse_train_config(read_text_file(path), path); }

std::string dump_train_config(const TrainConfig& c) {
  auto phase = [](const schedule::PhaseSpec& s) {
    return json{{"levels", s.levels}, {"cf", s.coarsening_factor}, {"relax", schedule::to_string(s.relax)},
                {"iterations", s.iterations}};
  };
  const auto& m = c.model;
  const auto& o = c.optimizer;
  json model{{"d_model", m.d_model},       {"heads", m.heads},         {"mlp_ratio", m.mlp_ratio},
             {"batch", m.batch},           {"ode_layers", m.ode_layers}, {"buffer_before", m.buffer_before},
             {"buffer_after", m.buffer_after}, {"tstop", m.tstop},      {"init", m.init},
             {"dropout", m.dropout},       {"patch", m.patch}};
  if (c.task == "char-lm") model["seq"] = m.seq;
  json solver{{"mode", c.solver.mode}, {"forward", phase(c.solver.forward)}, {"adjoint", phase(c.solver.adjoint)}};
  if (c.solver.mode == "multilevel") {
    const auto& ml = c.solver.multilevel;
    solver.update({{"levels", ml.levels}, {"cf", ml.cf}, {"coarse_steps", ml.coarse_steps},
                   {"fine_steps", ml.fine_steps}, {"correction", ml.correction}, {"restriction", ml.restriction},
                   {"level_solver", ml.level_solver}, {"coarse_lr_factor", ml.coarse_lr_factor},
                   {"coarse_batch", ml.coarse_batch}, {"line_search", ml.line_search}, {"momentum", ml.momentum}});
  }
  json out{{"format", "plait.train"},
           {"version", 1},
           {"task", c.task},
           {"data", {{"corpus", c.data.corpus}, {"dataset", c.data.dataset},
                     {"validation_fraction", c.data.validation_fraction}, {"tokenizer", c.data.tokenizer},
                     {"vocabulary", c.data.vocabulary}}},
           {"model", model},
           {"solver", solver},
           {"optimizer", {{"kind", o.kind}, {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"beta1", o.beta1},
                          {"beta2", o.beta2}, {"eps", o.eps}, {"momentum", o.momentum},
                          {"warmup_steps", o.warmup_steps}, {"min_lr_ratio", o.min_lr_ratio},
                          {"clip_norm", o.clip_norm}}},
           {"detector", {{"interval", c.detector.interval}, {"threshold", c.detector.threshold},
                         {"policy", c.detector.policy}, {"max_iterations", c.detector.max_iterations}}},
           {"steps", c.steps},
           {"seed", c.seed},
           {"eval_interval", c.eval_interval},
           {"eval_batches", c.eval_batches},
           {"checkpoint_interval", c.checkpoint_interval},
           {"log_interval", c.log_interval},
           {"device", c.device},
           {"out", c.out},
           {"profile", c.profile}};
  return out.dump(2);
}

SolverSettings initial_settings(const TrainConfig& config) {
  const std::string& mode = config.solver.mode == "multilevel" ? config.solver.multilevel.level_solver : config.solver.mode;
  SolverSettings settings{mode, config.solver.forward, config.solver.adjoint};
  return settings.mode == "serial" ? serial_settings(settings) : settings;
}

int training_levels(const TrainConfig& config) {
  return config.solver.mode == "multilevel" ? config.solver.multilevel.levels : 1;
}

TrainConfig level_config(const TrainConfig& config, int level) {
  TrainConfig out = config;
  for (int l = 0; l < level; ++l) out.model.ode_layers /= config.solver.multilevel.cf;
  return out;
}

SolverSettings serial_settings(SolverSettings settings) {
  settings.mode = "serial";
  settings.forward.levels = settings.adjoint.levels = 1;
  return settings;
}

namespace {
json phase_json(const schedule::PhaseSpec& s) {
  return {{"levels", s.levels}, {"cf", s.coarsening_factor}, {"relax", schedule::to_string(s.relax)},
          {"iterations", s.iterations}};
}
}  // namespace

std::string settings_json(const SolverSettings& s) {
  return json{{"mode", s.mode}, {"forward", phase_json(s.forward)}, {"adjoint", phase_json(s.adjoint)}}.dump();
}

std::string prediction_key(const SolverSettings& settings, int ode_layers) {
  json key = json::parse(settings_json(settings));
  key["ode_layers"] = ode_layers;
  return key.dump();
}

SolverSettings parse_settings_json(const std::string& text, const std::string& origin) {
  try {
    const json j = json::parse(text);
    auto phase = [](const json& p) {
      schedule::PhaseSpec out;
      out.levels = p.at("levels").get<int>();
      out.coarsening_factor = p.at("cf").get<int>();
      out.relax = schedule::parse_relax(p.at("relax").get<std::string>());
      out.iterations = p.at("iterations").get<int>();
      return out;
    };
    return {j.at("mode").get<std::string>(), phase(j.at("forward")), phase(j.at("adjoint"))};
  } catch (const json::exception& error) {
    throw Error(origin, std::string("malformed solver settings: ") + error.what());
  }
}

schedule::BuildSpec build_spec(const TrainConfig& config, const SolverSettings& settings, int ranks) {
  const auto& m = config.model;
  schedule::BuildSpec spec;
  spec.layers = m.ode_layers;
  spec.ranks = ranks;
  spec.forward = settings.forward;
  spec.adjoint = settings.adjoint;
  spec.model.d_model = m.d_model;
  spec.model.heads = m.heads;
  spec.model.seq = m.seq;
  spec.model.batch = m.batch;
  spec.model.mlp_ratio = m.mlp_ratio;
  spec.model.tstop = m.tstop;
  spec.model.causal = config.task == "char-lm";
  spec.model.init = m.init;
  spec.model.seed = config.seed;
  return spec;
}

schedule::Program build_program(const TrainConfig& config, const SolverSettings& settings, int ranks) {
  const schedule::BuildSpec spec = build_spec(config, settings, ranks);
  try {
    return settings.mode == "serial" ? schedule::build_serial(spec) : schedule::build_mgrit(spec);
  } catch (const Error& error) {
    throw error.within("solver (" + settings.mode + ", " + std::to_string(spec.layers) + " ODE layers on " +
                       std::to_string(ranks) + " ranks)");
  }
}

}  // namespace plait::training
