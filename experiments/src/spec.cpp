// Sweep specs: parsing, validation (every problem collected, each with its
// JSON pointer) and expansion of the grids into points.
//
// Format "plait.sweep", version 1:
//   format, version          "plait.sweep", 1 (required)
//   name                     string (required): names the sweep in the report
//   description              string
//   calibrate                bool: run `plait calibrate` into DIR/profile.json first;
//                            every prediction is then priced with that profile
//   calibrate_args           [string]: extra `plait calibrate` arguments
//   base                     one value per axis: the defaults of every grid
//   grids                    [object] (required, non-empty): each maps axes to a value
//                            or a list of values; a grid is their cartesian product
//   dtype                    "fp32" | "bf16" | "fp16": of every point
//   measure                  {"steps" >= 1, "warmup" >= 0, "repeats" >= 1,
//                            "speed_probe" bool (default true), "max_runs" >= repeats
//                            (default 2 x repeats), "max_spread" > 0 (default 0.5)}:
//                            measure points whose ranks fit this machine; absent:
//                            predict only. A run judged disturbed, or steady runs
//                            spreading past max_spread, get the point more runs.
//                            With calibrate, every run times plait-exec's speed probe
//                            and the point is priced at the speed it measured
//   points_from              {"csv": FILE, "vocab" >= 1 (default 50257)}, instead of grids:
//                            one point per row of measured steps (plait calibrate
//                            --from-steps' columns, matched by name), the Megatron
//                            GPT step the row ran (1F1B, TP, DP, recompute, fp16,
//                            Adam) on base's platform, its measured time the row's.
//                            With calibrate, the kernel model is fitted on the rows
//                            (with a 5-fold held-out check); no measure
//   profile                  FILE: a profile that prices every point (not with calibrate)
//                            Files are relative to the spec's folder.
// Axes: kind "mgrit" | "gpipe" | "1f1b" | "1f1b-interleaved" | "zb-h1" (pipelines: ranks are stages, and
// levels, cf, relax and iterations do not apply), micro_batches >= 1 (pipelines
// only; must divide the batch), dp >= 1 (data parallelism: dp replicas of the
// ranks, ranks x dp devices; dp x micro_batches must divide the batch),
// dp_overlap bool (gradients summed in 25 MiB buckets amid the backward),
// virtual_stages >= 1 (1f1b-interleaved's chunks a stage), frozen >= 0 (pipelines:
// the first blocks frozen, forward only), repack bool (with frozen: the trained
// blocks on fewer stages, the freed devices as replicas; ranks and dp in
// results.csv are the re-packed layout), layers >= 1, levels >= 1, cf >= 2, relax "F" | "FCF", fwd_iters >= 1,
// bwd_iters >= 1, ranks >= 1, model {"d_model", "heads", "seq", "batch" >= 1,
// heads dividing d_model}, mask "causal" | "none", platform (a shipped
// platform name or a file). Sweep-wide: "dtype" fp32 | bf16 | fp16 (default
// fp32); blocks have an MLP ratio of 4. tp >= 1 (tensor parallelism: ranks x
// dp x tp devices), vocab >= 0 (> 0: the full GPT step over that vocabulary),
// recompute bool or "none" | "full" | "selective" (pipelines: activation
// checkpointing; selective: attention's core only), zero 0-3 (ZeRO stage over
// the dp replicas; 3 is FSDP with prefetch), sequence_parallel bool (with tp),
// fwd_levels >= 1 (MGRIT:
// the forward's own levels, 1 a serial forward; default: levels), dp_allreduce
// "packed" | "per-tensor" (TorchBraid's blocking all-reduce per parameter
// tensor), ends "split" | "first-rank" (input and loss on each replica's first
// rank), buffer_blocks >= 0 (with vocab: serial blocks at each end), allreduce
// "auto" | "ring" | "recursive-doubling" (the simulator's algorithm: auto is
// MPI's choice by size, ring NCCL's). A sweep over a
// star cluster (several nodes) grows it to each point's devices.
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "detail/points.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

using nlohmann::json;

class Problems {
 public:
  void add(const std::string& pointer, const std::string& why) { list_.push_back(pointer + ": " + why); }
  bool empty() const { return list_.empty(); }
  std::string joined() const {
    std::string text;
    for (const auto& problem : list_) text += (text.empty() ? "" : "; ") + problem;
    return text;
  }

 private:
  std::vector<std::string> list_;
};

// Reads an integer >= minimum; adds a problem and returns false when it is not.
bool read_int(const json& value, const std::string& pointer, int minimum, std::int32_t& out, Problems& problems) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < minimum || value.get<std::int64_t>() > 1 << 30) {
    problems.add(pointer, "must be an integer >= " + std::to_string(minimum));
    return false;
  }
  out = value.get<std::int32_t>();
  return true;
}

bool read_bool(const json& value, const std::string& pointer, bool& out, Problems& problems) {
  if (!value.is_boolean()) {
    problems.add(pointer, "must be true or false");
    return false;
  }
  out = value.get<bool>();
  return true;
}

bool read_choice(const json& value, const std::string& pointer, const std::set<std::string>& choices,
                 std::string& out, Problems& problems) {
  if (!value.is_string() || !choices.count(value.get<std::string>())) {
    std::string list;
    for (const auto& choice : choices) list += (list.empty() ? "" : " or ") + ("\"" + choice + "\"");
    problems.add(pointer, "must be " + list);
    return false;
  }
  out = value.get<std::string>();
  return true;
}

void read_model(const json& value, const std::string& pointer, ModelShape& model, Problems& problems) {
  if (!value.is_object()) return problems.add(pointer, "must be an object {\"d_model\", \"heads\", \"seq\", \"batch\"}");
  static const std::map<std::string, std::int32_t ModelShape::*> sizes = {
      {"d_model", &ModelShape::d_model}, {"heads", &ModelShape::heads}, {"seq", &ModelShape::seq},
      {"batch", &ModelShape::batch}};
  for (const auto& [key, field] : value.items()) {
    if (sizes.count(key)) {
      read_int(field, pointer + "/" + key, 1, model.*sizes.at(key), problems);
    } else {
      problems.add(pointer + "/" + key, "unknown model field");
    }
  }
  if (model.d_model % model.heads != 0)
    problems.add(pointer + "/heads", "must divide d_model (" + std::to_string(model.d_model) + ")");
}

// Reads one axis value into `config`; the axis name is the pointer's last part.
// A sweep's kinds: MGRIT and every pipeline (the serial step is each point's baseline).
const std::set<std::string>& sweep_kinds() {
  static const std::set<std::string> kinds = [] {
    std::set<std::string> all(schedule::pipeline_kinds().begin(), schedule::pipeline_kinds().end());
    all.insert("mgrit");
    return all;
  }();
  return kinds;
}

using AxisReader = std::function<void(const json&, const std::string&, PointConfig&, Problems&)>;

const std::map<std::string, AxisReader>& axis_readers() {
  static const std::map<std::string, AxisReader> readers = {
      {"kind", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, sweep_kinds(), c.kind, e); }},
      {"micro_batches", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.micro_batches, e); }},
      {"dp", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.dp, e); }},
      {"virtual_stages", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.virtual_stages, e); }},
      {"dp_overlap", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_bool(v, p, c.dp_overlap, e); }},
      {"frozen", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 0, c.frozen, e); }},
      {"repack", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_bool(v, p, c.repack, e); }},
      {"layers", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.layers, e); }},
      {"levels", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.levels, e); }},
      {"cf", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 2, c.cf, e); }},
      {"relax", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, {"F", "FCF"}, c.relax, e); }},
      {"fwd_iters", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.fwd_iters, e); }},
      {"bwd_iters", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.bwd_iters, e); }},
      {"ranks", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.ranks, e); }},
      {"model", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_model(v, p, c.model, e); }},
      {"mask", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, {"causal", "none"}, c.mask, e); }},
      {"tp", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.tp, e); }},
      {"vocab", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 0, c.vocab, e); }},
      {"recompute",
       [](const json& v, const std::string& p, PointConfig& c, Problems& e) {
         if (v.is_boolean()) return void(c.recompute = v.get<bool>());
         std::string mode;
         read_choice(v, p, {"none", "full", "selective"}, mode, e);
         c.recompute = mode == "full", c.selective_recompute = mode == "selective";
       }},
      {"zero", [](const json& v, const std::string& p, PointConfig& c, Problems& e) {
         if (read_int(v, p, 0, c.zero, e) && c.zero > 3) e.add(p, "must be a ZeRO stage: 0, 1, 2 or 3");
       }},
      {"sequence_parallel", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_bool(v, p, c.sequence_parallel, e); }},
      {"fwd_levels", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 1, c.fwd_levels, e); }},
      {"dp_allreduce", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, {"packed", "per-tensor"}, c.dp_allreduce, e); }},
      {"ends", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, {"split", "first-rank"}, c.ends, e); }},
      {"allreduce", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_choice(v, p, {"auto", "ring", "recursive-doubling"}, c.allreduce, e); }},
      {"buffer_blocks", [](const json& v, const std::string& p, PointConfig& c, Problems& e) { read_int(v, p, 0, c.buffer_blocks, e); }},
      {"platform",
       [](const json& v, const std::string& p, PointConfig& c, Problems& e) {
         if (!v.is_string() || v.get<std::string>().empty()) return e.add(p, "must be a platform name or file");
         c.platform = v.get<std::string>();
       }},
  };
  return readers;
}

PointConfig read_base(const json& base, Problems& problems) {
  PointConfig config;
  if (!base.is_object()) {
    problems.add("/base", "must be an object of one value per axis");
    return config;
  }
  for (const auto& [axis, value] : base.items()) {
    const auto reader = axis_readers().find(axis);
    if (reader == axis_readers().end()) {
      problems.add("/base/" + axis, "unknown axis");
    } else if (value.is_array()) {
      problems.add("/base/" + axis, "must be one value (lists of values go in grids)");
    } else {
      reader->second(value, "/base/" + axis, config, problems);
    }
  }
  return config;
}

// A re-packing point's layout: the ranks and dp its frozen blocks leave it
// (schedule::repacked); the point keeps repack to say so.
void repack(PointConfig& point) {
  const schedule::BuildSpec packed = schedule::repacked(detail::point_build_spec(point));
  point.ranks = packed.ranks;
  point.dp = packed.replicas;
}

// The cartesian product of one grid, axes in axis_readers() order.
void expand_grid(const json& grid, const std::string& pointer, const PointConfig& base,
                 std::vector<PointConfig>& points, Problems& problems) {
  if (!grid.is_object() || grid.empty()) return problems.add(pointer, "must be a non-empty object of axes");
  std::vector<PointConfig> expanded = {base};
  for (const auto& [axis, reader] : axis_readers()) {
    if (!grid.contains(axis)) continue;
    const json& values = grid.at(axis);
    const json list = values.is_array() ? values : json::array({values});
    if (list.empty()) {
      problems.add(pointer + "/" + axis, "must list at least one value");
      continue;
    }
    bool valid = true;
    for (std::size_t i = 0; i < list.size(); ++i) {
      PointConfig scratch = base;
      Problems local;
      reader(list[i], pointer + "/" + axis + (values.is_array() ? "/" + std::to_string(i) : ""), scratch, local);
      if (!local.empty()) {
        reader(list[i], pointer + "/" + axis + (values.is_array() ? "/" + std::to_string(i) : ""), scratch, problems);
        valid = false;
      }
    }
    if (!valid) continue;
    std::vector<PointConfig> next;
    for (const PointConfig& config : expanded) {
      for (const json& value : list) {
        PointConfig point = config;
        Problems ignored;  // checked above
        reader(value, pointer, point, ignored);
        next.push_back(point);
      }
    }
    expanded = std::move(next);
  }
  for (const auto& [axis, value] : grid.items())
    if (!axis_readers().count(axis)) problems.add(pointer + "/" + axis, "unknown axis");
  for (PointConfig& point : expanded) {
    if (point.repack) repack(point);
    bool seen = false;
    for (const PointConfig& other : points) seen = seen || other == point;
    if (!seen) points.push_back(point);
  }
}

std::optional<MeasureSpec> read_measure(const json& value, Problems& problems) {
  if (!value.is_object()) {
    problems.add("/measure", "must be an object {\"steps\", \"warmup\", \"repeats\"}");
    return std::nullopt;
  }
  MeasureSpec measure;
  for (const auto& [key, field] : value.items()) {
    std::int32_t number = 0;
    if (key == "steps") {
      if (read_int(field, "/measure/steps", 1, number, problems)) measure.steps = number;
    } else if (key == "warmup") {
      if (read_int(field, "/measure/warmup", 0, number, problems)) measure.warmup = number;
    } else if (key == "repeats") {
      if (read_int(field, "/measure/repeats", 1, number, problems)) measure.repeats = number;
    } else if (key == "speed_probe") {
      if (field.is_boolean()) measure.speed_probe = field.get<bool>();
      else problems.add("/measure/speed_probe", "must be true or false");
    } else if (key == "max_runs") {
      if (read_int(field, "/measure/max_runs", 1, number, problems)) measure.max_runs = number;
    } else if (key == "max_spread") {
      if (field.is_number() && field.get<double>() > 0) measure.max_spread = field.get<double>();
      else problems.add("/measure/max_spread", "must be a number > 0 (a fraction of the median run)");
    } else {
      problems.add("/measure/" + key, "unknown field");
    }
  }
  if (measure.max_runs > 0 && measure.max_runs < measure.repeats)
    problems.add("/measure/max_runs", "must be at least repeats (" + std::to_string(measure.repeats) + ")");
  return measure;
}

// "points_from": {"csv": FILE, "vocab": V}: every row of the file a point.
void read_points_from(const json& value, const PointConfig& base,
                      const std::function<std::string(const std::string&)>& resolved, SweepSpec& spec,
                      Problems& problems) {
  if (!value.is_object()) return problems.add("/points_from", "must be an object {\"csv\", \"vocab\"}");
  std::int32_t vocab = 50257;  // GPT-2's, which the Megatron runs measured
  for (const auto& [key, field] : value.items()) {
    if (key == "csv") {
      if (field.is_string() && !field.get<std::string>().empty()) spec.steps_csv = resolved(field.get<std::string>());
      else problems.add("/points_from/csv", "must be a CSV file of measured steps");
    } else if (key == "vocab") {
      read_int(field, "/points_from/vocab", 1, vocab, problems);
    } else {
      problems.add("/points_from/" + key, "unknown field");
    }
  }
  if (spec.steps_csv.empty()) return problems.add("/points_from/csv", "is required");
  try {
    for (auto& [point, seconds] : detail::step_points(spec.steps_csv, vocab, base)) {
      spec.points.push_back(std::move(point));
      spec.recorded_time_s.push_back(seconds);
    }
  } catch (const std::exception& error) {
    problems.add("/points_from/csv", error.what());
  }
}

}  // namespace

SweepSpec parse_sweep_spec(const std::string& text, const std::string& origin) {
  const json in = json::parse(text, nullptr, false);
  if (in.is_discarded()) throw Error(origin, "not valid JSON");
  if (!in.is_object()) throw Error(origin, "/: must be a plait.sweep object");
  Problems problems;
  SweepSpec spec;
  if (in.value("format", json()) != "plait.sweep") problems.add("/format", "must be \"plait.sweep\"");
  if (!in.contains("version") || in.at("version") != SweepSpec::format_version)
    problems.add("/version", "must be " + std::to_string(SweepSpec::format_version));
  if (!in.contains("name") || !in.at("name").is_string() || in.at("name").get<std::string>().empty())
    problems.add("/name", "must be a non-empty string");
  else
    spec.name = in.at("name").get<std::string>();
  static const std::set<std::string> known = {"format", "version", "name", "description", "calibrate",
                                              "calibrate_args", "base", "grids", "measure", "dtype",
                                              "points_from", "profile"};
  for (const auto& [key, value] : in.items())
    if (!known.count(key)) problems.add("/" + key, "unknown field");
  if (in.contains("description")) {
    if (in.at("description").is_string()) spec.description = in.at("description").get<std::string>();
    else problems.add("/description", "must be a string");
  }
  if (in.contains("calibrate")) {
    if (in.at("calibrate").is_boolean()) spec.calibrate = in.at("calibrate").get<bool>();
    else problems.add("/calibrate", "must be true or false");
  }
  if (in.contains("calibrate_args")) {
    const json& args = in.at("calibrate_args");
    if (!args.is_array()) problems.add("/calibrate_args", "must be a list of strings");
    for (std::size_t i = 0; args.is_array() && i < args.size(); ++i) {
      if (args[i].is_string()) spec.calibrate_args.push_back(args[i].get<std::string>());
      else problems.add("/calibrate_args/" + std::to_string(i), "must be a string");
    }
  }
  std::string dtype = "fp32";
  if (in.contains("dtype")) read_choice(in.at("dtype"), "/dtype", {"fp32", "bf16", "fp16"}, dtype, problems);
  if (in.contains("measure")) spec.measure = read_measure(in.at("measure"), problems);
  const PointConfig base = in.contains("base") ? read_base(in.at("base"), problems) : PointConfig{};
  const std::filesystem::path folder = std::filesystem::path(origin).parent_path();
  const auto resolved = [&](const std::string& path) { return path.empty() || path[0] == '/' ? path : (folder / path).lexically_normal().string(); };
  if (in.contains("profile")) {
    if (!in.at("profile").is_string() || in.at("profile").get<std::string>().empty())
      problems.add("/profile", "must be a profile file");
    else if (spec.calibrate)
      problems.add("/profile", "a sweep that calibrates writes its own profile: drop one of calibrate and profile");
    else
      spec.profile = resolved(in.at("profile").get<std::string>());
  }
  if (in.contains("points_from")) {
    if (in.contains("grids")) problems.add("/grids", "a sweep takes its points from grids or from points_from, not both");
    if (in.contains("measure")) problems.add("/measure", "points from a CSV are measured already: drop measure");
    if (in.contains("dtype")) problems.add("/dtype", "points from a CSV run in fp16 (the Megatron steps measured)");
    read_points_from(in.at("points_from"), base, resolved, spec, problems);
  } else if (!in.contains("grids") || !in.at("grids").is_array() || in.at("grids").empty()) {
    problems.add("/grids", "must be a non-empty list of grids");
  } else {
    for (std::size_t i = 0; i < in.at("grids").size(); ++i)
      expand_grid(in.at("grids")[i], "/grids/" + std::to_string(i), base, spec.points, problems);
  }
  for (const PointConfig& point : spec.points) {
    if (is_pipeline(point)) continue;
    if (point.micro_batches != 1)
      problems.add("/grids", "micro_batches " + std::to_string(point.micro_batches) + " on a " + point.kind +
                                 " point: only pipelines (" + schedule::pipeline_kind_list() + ") split the batch");
    if (point.frozen != 0)
      problems.add("/grids", "frozen " + std::to_string(point.frozen) + " on a " + point.kind +
                                 " point: only pipelines (" + schedule::pipeline_kind_list() + ") freeze blocks");
  }
  if (!problems.empty()) throw Error(origin, problems.joined());
  for (PointConfig& point : spec.points)
    if (point.source.empty()) point.model.dtype = dtype;
  return spec;
}

SweepSpec load_sweep_spec(const std::string& path) { return parse_sweep_spec(read_text_file(path), path); }

}  // namespace plait::experiments
