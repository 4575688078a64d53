// Profile JSON. Format "plait.profile", version 1:
//
// {
//   "format": "plait.profile", "version": 1,
//   "units": {"time": "s", "size": "B"},          // checked: anything else is refused
//   "machine": {"cpu_model", "cores", "threads", "torch_version", "device", "date",
//               "clock": "real_time" | "cpu_time"},   // which time the op timings are
//   "device": {"name", "peak_flops_fp32", "peak_flops_bf16", "memory_bandwidth", "efficiency",
//              "gemm_half_dim", "memory_efficiency", "kernel_overhead_s", "message_overhead_s"},  // the last four optional
//   "ops": [{"key": "block.fwd",
//            "shape": {"d_model", "heads", "seq", "batch", "mlp_ratio", "dtype", "causal"},
//            "alone": {"mean_s", "median_s", "min_s", "stddev_s", "repetitions"},
//            "contended": {...} }],                // optional
//   "fits": {"block.fwd": {"efficiency", "overhead_s", "contention_factor"}, ...},
//   "network": {"ranks", "pingpong": [{"bytes", <timing as above>}],
//               "allreduce": [...],
//               "segments": [{"max_bytes", "latency_s", "seconds_per_byte"}],
//               "gradient_allreduce": [...],            // optional, as pingpong
//               "gradient_pass_bytes_per_s"},           // optional, > 0
//                                                       // (the network is optional)
//   "speed_references": [{"shape": {...}, "alone_s", "contended_s",            // optional
//                         "idle": {"slowdown", "time_constant_s"},           // optional
//                         "serial_factor"}]                                   // optional, > 0
//   "shape_factors": [{"shape": {..., "tensor_parallel", "vocab"},  // optional (calibrate --from-steps)
//                      "block", "ends", "rows"}]                    // factors > 0
// }
// A shape's "tensor_parallel" (default 1) and "vocab" (default 0) are optional.
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/json_reader.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::costmodels {

using nlohmann::json;
using Pointer = json::json_pointer;

namespace {

// A profile's ops are what plait-bench measures.
const std::set<std::string_view> compute_keys = [] {
  const std::vector<std::string_view> keys = benchmarked_keys();
  return std::set<std::string_view>(keys.begin(), keys.end());
}();

json timing_json(const Timing& timing) {
  return {{"mean_s", timing.mean_s},     {"median_s", timing.median_s},
          {"min_s", timing.min_s},       {"stddev_s", timing.stddev_s},
          {"repetitions", timing.repetitions}};
}

json shape_json(const schedule::ModelDesc& shape) {
  return {{"d_model", shape.d_model}, {"heads", shape.heads}, {"seq", shape.seq},
          {"batch", shape.batch},     {"mlp_ratio", shape.mlp_ratio}, {"dtype", shape.dtype},
          {"causal", shape.causal}};
}

json full_shape_json(const schedule::ModelDesc& shape) {
  json out = shape_json(shape);
  out["tensor_parallel"] = shape.tensor_parallel;
  out["vocab"] = shape.vocab;
  return out;
}

json messages_json(const std::vector<MessageMeasurement>& messages) {
  json out = json::array();
  for (const MessageMeasurement& message : messages) {
    json entry = timing_json(message.time);
    entry["bytes"] = message.bytes;
    out.push_back(entry);
  }
  return out;
}

// Reading, with every problem gathered by the reader.
struct ProfileReader {
  detail::JsonReader& in;

  // A Timing's fields in `object` (at `here`).
  Timing timing_fields(const json& object, const Pointer& here) {
    return {.mean_s = in.seconds(object, here, "mean_s"),
            .median_s = in.seconds(object, here, "median_s"),
            .min_s = in.seconds(object, here, "min_s"),
            .stddev_s = in.seconds(object, here, "stddev_s"),
            .repetitions = static_cast<int>(in.integer(object, here, "repetitions", 1))};
  }

  Timing timing(const json& parent, const Pointer& at, std::string_view key) {
    const json* object = in.object(parent, at, key);
    return object ? timing_fields(*object, at / std::string(key)) : Timing{};
  }

  schedule::ModelDesc shape(const json& parent, const Pointer& at) {
    schedule::ModelDesc shape;
    const json* object = in.object(parent, at, "shape");
    if (!object) return shape;
    const Pointer here = at / "shape";
    shape.d_model = static_cast<int>(in.integer(*object, here, "d_model", 1));
    shape.heads = static_cast<int>(in.integer(*object, here, "heads", 1));
    shape.seq = static_cast<int>(in.integer(*object, here, "seq", 1));
    shape.batch = static_cast<int>(in.integer(*object, here, "batch", 1));
    shape.mlp_ratio = static_cast<int>(in.integer(*object, here, "mlp_ratio", 1));
    shape.dtype = in.string(*object, here, "dtype");
    shape.causal = in.boolean(*object, here, "causal");
    if (object->contains("tensor_parallel"))
      shape.tensor_parallel = static_cast<int>(in.integer(*object, here, "tensor_parallel", 1));
    if (object->contains("vocab")) shape.vocab = static_cast<int>(in.integer(*object, here, "vocab", 0));
    if (shape.heads > 0 && shape.d_model % shape.heads != 0) {
      in.problem(here / "heads", "d_model " + std::to_string(shape.d_model) + " is not divisible by heads " +
                                     std::to_string(shape.heads));
    }
    if (object->contains("dtype") && shape.dtype != "fp32" && shape.dtype != "bf16" &&
        shape.dtype != "fp16") {
      in.problem(here / "dtype", "expected fp32, bf16 or fp16, got \"" + shape.dtype + "\"");
    }
    return shape;
  }

  std::vector<MessageMeasurement> messages(const json& parent, const Pointer& at,
                                           std::string_view key) {
    std::vector<MessageMeasurement> messages;
    const json* list = in.array(parent, at, key);
    if (!list) return messages;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Pointer here = at / std::string(key) / i;
      MessageMeasurement message;
      message.bytes = in.integer((*list)[i], here, "bytes", 1, std::numeric_limits<std::int64_t>::max());
      message.time = timing_fields((*list)[i], here);
      messages.push_back(message);
    }
    return messages;
  }

  void units(const json& root) {
    const json* units = in.object(root, Pointer(), "units");
    if (!units) return;
    const std::string time = in.string(*units, Pointer("/units"), "time");
    const std::string size = in.string(*units, Pointer("/units"), "size");
    if (units->contains("time") && time != "s") {
      in.problem(Pointer("/units/time"), "wrong unit \"" + time + "\", expected \"s\"");
    }
    if (units->contains("size") && size != "B") {
      in.problem(Pointer("/units/size"), "wrong unit \"" + size + "\", expected \"B\"");
    }
  }

  MachineInfo machine(const json& root) {
    MachineInfo machine;
    const json* object = in.object(root, Pointer(), "machine");
    if (!object) return machine;
    const Pointer here("/machine");
    machine.cpu_model = in.string(*object, here, "cpu_model");
    machine.cores = static_cast<int>(in.integer(*object, here, "cores", 1));
    machine.threads = static_cast<int>(in.integer(*object, here, "threads", 1));
    machine.torch_version = in.string(*object, here, "torch_version");
    machine.device = in.string(*object, here, "device");
    machine.date = in.string(*object, here, "date");
    machine.clock = in.string(*object, here, "clock");
    if (object->contains("clock") && machine.clock != "real_time" && machine.clock != "cpu_time") {
      in.problem(here / "clock", "expected \"real_time\" or \"cpu_time\", got \"" + machine.clock + "\"");
    }
    return machine;
  }

  DeviceSheet device(const json& root) {
    DeviceSheet device;
    const json* object = in.object(root, Pointer(), "device");
    if (!object) return device;
    const Pointer here("/device");
    device.name = in.string(*object, here, "name");
    device.peak_flops_fp32 = in.number(*object, here, "peak_flops_fp32", 1.0, "FLOP/s");
    device.peak_flops_bf16 = in.number(*object, here, "peak_flops_bf16", 0.0, "FLOP/s");
    device.memory_bandwidth = in.number(*object, here, "memory_bandwidth", 1.0, "bandwidth");
    device.efficiency = in.number(*object, here, "efficiency", 1e-6, "efficiency");
    if (object->contains("gemm_half_dim")) device.gemm_half_dim = in.number(*object, here, "gemm_half_dim", 0.0, "dimension");
    if (object->contains("memory_efficiency"))
      device.memory_efficiency = in.number(*object, here, "memory_efficiency", 1e-6, "efficiency");
    if (object->contains("kernel_overhead_s")) device.kernel_overhead_s = in.seconds(*object, here, "kernel_overhead_s");
    if (object->contains("message_overhead_s")) device.message_overhead_s = in.seconds(*object, here, "message_overhead_s");
    return device;
  }

  std::vector<OpMeasurement> ops(const json& root) {
    std::vector<OpMeasurement> ops;
    const json* list = in.array(root, Pointer(), "ops");
    if (!list) return ops;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json& entry = (*list)[i];
      const Pointer here = Pointer("/ops") / i;
      OpMeasurement op;
      op.key = in.string(entry, here, "key");
      if (entry.contains("key") && !compute_keys.contains(op.key)) {
        in.problem(here / "key", "unknown compute cost key \"" + op.key + "\"");
      }
      op.shape = shape(entry, here);
      op.alone = timing(entry, here, "alone");
      if (entry.is_object() && entry.contains("contended")) {
        op.contended = timing(entry, here, "contended");
      }
      ops.push_back(std::move(op));
    }
    return ops;
  }

  std::map<std::string, KeyFit> fits(const json& root) {
    std::map<std::string, KeyFit> fits;
    const json* object = in.object(root, Pointer(), "fits");
    if (!object) return fits;
    for (const auto& [key, value] : object->items()) {
      const Pointer here = Pointer("/fits") / key;
      if (!compute_keys.contains(key)) in.problem(here, "unknown compute cost key \"" + key + "\"");
      KeyFit fit;
      fit.efficiency = in.number(value, here, "efficiency", 1e-6, "efficiency");
      fit.overhead_s = in.seconds(value, here, "overhead_s");
      fit.contention_factor = in.number(value, here, "contention_factor", 1e-6, "factor");
      fits[key] = fit;
    }
    return fits;
  }

  // The entries of root's optional list `key`, each read by read(entry, its pointer).
  template <class T, class Read>
  std::vector<T> optional_list(const json& root, const std::string& key, Read&& read) {
    std::vector<T> out;
    const json* list = root.contains(key) ? in.array(root, Pointer(), key) : nullptr;
    for (std::size_t i = 0; list && i < list->size(); ++i) out.push_back(read((*list)[i], Pointer("/" + key) / i));
    return out;
  }

  std::vector<SpeedReference> speed_references(const json& root) {
    return optional_list<SpeedReference>(root, "speed_references", [&](const json& entry, const Pointer& here) {
      SpeedReference reference;
      reference.shape = shape(entry, here);
      reference.alone_s = in.seconds(entry, here, "alone_s");
      reference.contended_s = in.seconds(entry, here, "contended_s");
      for (const auto& [value, name] : {std::pair{reference.alone_s, "alone_s"}, {reference.contended_s, "contended_s"}})
        if (entry.is_object() && entry.contains(name) && !(value > 0)) in.problem(here / name, "must be > 0");
      if (const json* idle = in.object(entry, here, "idle", /*optional=*/true)) {
        reference.idle.slowdown = in.number(*idle, here / "idle", "slowdown", 0.0, "slowdown");
        reference.idle.time_constant_s = in.seconds(*idle, here / "idle", "time_constant_s");
        if (reference.idle.slowdown > 0 && idle->contains("time_constant_s") && !(reference.idle.time_constant_s > 0))
          in.problem(here / "idle" / "time_constant_s", "must be > 0 when the slowdown is");
      }
      if (entry.is_object() && entry.contains("serial_factor")) {
        reference.serial_factor = in.number(entry, here, "serial_factor", 0.0, "factor");
        if (!(reference.serial_factor > 0)) in.problem(here / "serial_factor", "must be > 0");
      }
      return reference;
    });
  }

  std::vector<ShapeFactors> shape_factors(const json& root) {
    return optional_list<ShapeFactors>(root, "shape_factors", [&](const json& entry, const Pointer& here) {
      return ShapeFactors{.shape = shape(entry, here),
                          .block = in.number(entry, here, "block", 1e-6, "factor"),
                          .ends = in.number(entry, here, "ends", 1e-6, "factor"),
                          .rows = static_cast<int>(in.integer(entry, here, "rows", 1))};
    });
  }

  std::optional<NetworkProfile> network(const json& root) {
    const json* object = in.object(root, Pointer(), "network", /*optional=*/true);
    if (!object) return std::nullopt;
    const Pointer here("/network");
    NetworkProfile network;
    network.ranks = static_cast<int>(in.integer(*object, here, "ranks", 2));
    network.pingpong = messages(*object, here, "pingpong");
    network.allreduce = messages(*object, here, "allreduce");
    if (object->contains("gradient_allreduce"))
      network.gradient_allreduce = messages(*object, here, "gradient_allreduce");
    if (object->contains("gradient_pass_bytes_per_s")) {
      network.gradient_pass_bytes_per_s = in.number(*object, here, "gradient_pass_bytes_per_s", 0.0, "rate");
      if (!(network.gradient_pass_bytes_per_s > 0)) in.problem(here / "gradient_pass_bytes_per_s", "must be > 0");
    }
    const json* segments = in.array(*object, here, "segments");
    if (segments && segments->empty()) in.problem(here / "segments", "no segments");
    for (std::size_t i = 0; segments && i < segments->size(); ++i) {
      const Pointer at = here / "segments" / i;
      MessageSegment segment;
      segment.max_bytes = in.integer((*segments)[i], at, "max_bytes", 0, std::numeric_limits<std::int64_t>::max());
      segment.latency_s = in.seconds((*segments)[i], at, "latency_s");
      segment.seconds_per_byte = in.seconds((*segments)[i], at, "seconds_per_byte");
      if (!network.model.segments.empty() &&
          segment.max_bytes <= network.model.segments.back().max_bytes) {
        in.problem(at / "max_bytes", "segments must be sorted by increasing max_bytes");
      }
      network.model.segments.push_back(segment);
    }
    return network;
  }
};

}  // namespace

void to_json(json& out, const Profile& profile) {
  out = {{"format", "plait.profile"},
         {"version", Profile::format_version},
         {"units", {{"time", "s"}, {"size", "B"}}}};
  const MachineInfo& machine = profile.machine;
  out["machine"] = {{"cpu_model", machine.cpu_model}, {"cores", machine.cores},
                    {"threads", machine.threads},     {"torch_version", machine.torch_version},
                    {"device", machine.device},       {"date", machine.date},
                    {"clock", machine.clock}};
  const DeviceSheet& device = profile.device;
  out["device"] = {{"name", device.name},
                   {"peak_flops_fp32", device.peak_flops_fp32},
                   {"peak_flops_bf16", device.peak_flops_bf16},
                   {"memory_bandwidth", device.memory_bandwidth},
                   {"efficiency", device.efficiency}};
  if (device.gemm_half_dim != 0 || device.memory_efficiency != 1 || device.kernel_overhead_s != 0 ||
      device.message_overhead_s != 0)
    out["device"].update({{"gemm_half_dim", device.gemm_half_dim},
                          {"memory_efficiency", device.memory_efficiency},
                          {"kernel_overhead_s", device.kernel_overhead_s},
                          {"message_overhead_s", device.message_overhead_s}});
  json ops = json::array();
  for (const OpMeasurement& op : profile.ops) {
    json entry = {{"key", op.key}, {"shape", shape_json(op.shape)}, {"alone", timing_json(op.alone)}};
    if (op.contended) entry["contended"] = timing_json(*op.contended);
    ops.push_back(std::move(entry));
  }
  out["ops"] = std::move(ops);
  json fits = json::object();
  for (const auto& [key, fit] : profile.fits) {
    fits[key] = {{"efficiency", fit.efficiency}, {"overhead_s", fit.overhead_s},
                 {"contention_factor", fit.contention_factor}};
  }
  out["fits"] = std::move(fits);
  if (profile.network) {
    const NetworkProfile& network = *profile.network;
    json segments = json::array();
    for (const MessageSegment& segment : network.model.segments) {
      segments.push_back({{"max_bytes", segment.max_bytes}, {"latency_s", segment.latency_s},
                          {"seconds_per_byte", segment.seconds_per_byte}});
    }
    out["network"] = {{"ranks", network.ranks}, {"pingpong", messages_json(network.pingpong)},
                      {"allreduce", messages_json(network.allreduce)}, {"segments", segments}};
    if (!network.gradient_allreduce.empty())
      out["network"]["gradient_allreduce"] = messages_json(network.gradient_allreduce);
    if (network.gradient_pass_bytes_per_s > 0)
      out["network"]["gradient_pass_bytes_per_s"] = network.gradient_pass_bytes_per_s;
  }
  if (!profile.speed_references.empty()) {
    json references = json::array();
    for (const SpeedReference& reference : profile.speed_references)
      references.push_back({{"shape", shape_json(reference.shape)},
                            {"alone_s", reference.alone_s},
                            {"contended_s", reference.contended_s},
                            {"idle",
                             {{"slowdown", reference.idle.slowdown},
                              {"time_constant_s", reference.idle.time_constant_s}}},
                            {"serial_factor", reference.serial_factor}});
    out["speed_references"] = std::move(references);
  }
  if (!profile.shape_factors.empty()) {
    json factors = json::array();
    for (const ShapeFactors& f : profile.shape_factors)
      factors.push_back({{"shape", full_shape_json(f.shape)}, {"block", f.block}, {"ends", f.ends}, {"rows", f.rows}});
    out["shape_factors"] = std::move(factors);
  }
}

std::string dump_profile(const Profile& profile) {
  json out;
  to_json(out, profile);
  return out.dump(2) + "\n";
}

void save_profile(const Profile& profile, const std::string& path) { write_text_file(path, dump_profile(profile)); }

Profile parse_profile(const std::string& text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& error) {  // parse_error, or out_of_range for a number beyond double
    throw Error(origin, std::string("not valid JSON: ") + error.what());
  }
  detail::JsonReader in(origin);
  if (!root.is_object()) {
    in.problem(Pointer(), "expected an object");
    in.throw_if_problems();
  }
  const std::string format = in.string(root, Pointer(), "format");
  if (root.contains("format") && format != "plait.profile") {
    in.problem(Pointer("/format"), "expected \"plait.profile\", got \"" + format + "\"");
  }
  const auto version = in.integer(root, Pointer(), "version", 1);
  if (root.contains("version") && version != Profile::format_version) {
    in.problem(Pointer("/version"), "unsupported version " + std::to_string(version) +
                                        " (this plait reads 1)");
  }
  ProfileReader reader{in};
  reader.units(root);
  Profile profile;
  profile.machine = reader.machine(root);
  profile.device = reader.device(root);
  profile.ops = reader.ops(root);
  profile.fits = reader.fits(root);
  profile.network = reader.network(root);
  profile.speed_references = reader.speed_references(root);
  profile.shape_factors = reader.shape_factors(root);
  in.throw_if_problems();
  return profile;
}

Profile load_profile(const std::string& path) { return parse_profile(read_text_file(path), path); }

}  // namespace plait::costmodels
