// Parsing plait-bench (Google Benchmark) and ping-pong JSON into profile parts.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>

#include "detail/json_reader.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

using nlohmann::json;
using Pointer = json::json_pointer;

std::string benchmark_name(std::string_view key, const schedule::ModelDesc& shape) {
  return std::string(key) + "/" + shape_name(shape);
}

std::vector<std::string_view> benchmarked_keys() {
  namespace keys = schedule::cost_keys;
  return {keys::block_forward,           keys::block_forward_keep,       keys::block_adjoint,
          keys::block_gradient,          keys::block_adjoint_recompute,  keys::block_gradient_recompute,
          keys::vec_zero,                keys::vec_copy,                 keys::vec_sub,
          keys::vec_norm,                keys::input,                    keys::loss};
}

namespace {

json parse_json(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::exception& error) {  // parse_error, or out_of_range for a number beyond double
    throw Error(origin, std::string("not valid JSON: ") + error.what());
  }
}

double seconds_per_unit(const std::string& unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1;
  return 0;
}

}  // namespace

std::string_view to_string(BenchClock clock) {
  return clock == BenchClock::cpu ? "cpu_time" : "real_time";
}

BenchResults read_benchmark_results(const std::string& text, const std::string& origin,
                                    BenchClock clock) {
  const json root = parse_json(text, origin);
  detail::JsonReader in(origin);
  BenchResults results;
  const json* list = in.array(root, Pointer(), "benchmarks");
  in.throw_if_problems();
  if (const json* context = root.contains("context") ? &root["context"] : nullptr;
      context && context->is_object() && context->contains("torch_version")) {
    results.torch_version = in.string(*context, Pointer("/context"), "torch_version");
  }
  // Optional members (json::value would throw a json::type_error on a wrong type).
  const auto optional_string = [&](const json& entry, const Pointer& here, const char* key, std::string fallback) {
    return entry.is_object() && entry.contains(key) ? in.string(entry, here, key) : fallback;
  };
  const auto optional_flag = [&](const json& entry, const Pointer& here, const char* key) {
    return entry.is_object() && entry.contains(key) && in.boolean(entry, here, key);
  };
  std::map<std::string, std::vector<double>> times;
  std::vector<std::string> order;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    const Pointer here = Pointer("/benchmarks") / i;
    if (optional_string(entry, here, "run_type", "iteration") != "iteration") continue;  // aggregates
    std::string name = entry.is_object() && entry.contains("run_name") ? in.string(entry, here, "run_name")
                                                                       : in.string(entry, here, "name");
    // Google Benchmark appends "/real_time" to benchmarks that use real time.
    const std::string real_time_suffix = "/real_time";
    if (name.size() > real_time_suffix.size() &&
        name.compare(name.size() - real_time_suffix.size(), real_time_suffix.size(),
                     real_time_suffix) == 0) {
      name.resize(name.size() - real_time_suffix.size());
    }
    if (optional_flag(entry, here, "error_occurred")) {
      results.failures.push_back({name, optional_string(entry, here, "error_message", "")});
      continue;
    }
    const std::string unit = in.string(entry, here, "time_unit");
    const double scale = seconds_per_unit(unit);
    if (scale == 0 && entry.contains("time_unit")) {
      in.problem(here / "time_unit", "wrong unit \"" + unit + "\" (ns, us, ms or s)");
    }
    const double time = in.seconds(entry, here, std::string(to_string(clock)));
    if (!times.contains(name)) order.push_back(name);
    times[name].push_back(time * scale);
  }
  in.throw_if_problems();
  std::vector<double> peaks, bandwidths;
  for (const std::string& name : order) {
    const std::size_t slash = name.find('/');
    const std::string key = name.substr(0, slash);
    if (key == gemm_probe || key == stream_probe) {
      // The work is in the name (n: matrix size; mib: copied MiB), so rates
      // follow the chosen clock: 2n^3 FLOPs per GEMM, a copy reads and writes.
      const std::string size = name.substr(std::min(name.size(), slash + 1));
      const bool gemm = key == gemm_probe;
      const std::string prefix = gemm ? "n" : "mib";
      double amount = 0;
      if (size.rfind(prefix, 0) == 0) amount = std::atof(size.c_str() + prefix.size());
      if (!(amount > 0)) throw Error(origin, "probe \"" + name + "\" has no size (" + prefix + "N)");
      const double seconds = timing_of(times[name]).median_s;
      if (gemm) peaks.push_back(2 * amount * amount * amount / seconds);
      else bandwidths.push_back(2 * amount * 1024 * 1024 / seconds);
    } else if (slash == std::string::npos) {
      throw Error(origin, "benchmark \"" + name + "\" is not named <cost key>/<shape>");
    } else {
      try {
        results.ops.push_back({key, parse_shape_name(name.substr(slash + 1)), timing_of(times[name]),
                               std::nullopt});
      } catch (const Error& error) {
        throw error.within(origin + ": benchmark \"" + name + "\"");
      }
    }
  }
  if (!peaks.empty()) results.peak_flops = *std::max_element(peaks.begin(), peaks.end());
  if (!bandwidths.empty()) {
    results.memory_bandwidth = *std::max_element(bandwidths.begin(), bandwidths.end());
  }
  return results;
}

void add_contended(std::vector<OpMeasurement>& ops, const std::vector<OpMeasurement>& first,
                   const std::vector<OpMeasurement>& second) {
  const auto find = [](const std::vector<OpMeasurement>& list, const OpMeasurement& op) {
    for (const OpMeasurement& other : list) {
      if (other.key == op.key && same_shape(other.shape, op.shape)) return &other;
    }
    return static_cast<const OpMeasurement*>(nullptr);
  };
  for (OpMeasurement& op : ops) {
    const OpMeasurement* x = find(first, op);
    const OpMeasurement* y = find(second, op);
    if (x && y) {
      // Pooled: mean of the two means, stddev of both runs' repetitions together.
      const Timing& a = x->alone;
      const Timing& b = y->alone;
      Timing pooled;
      pooled.repetitions = a.repetitions + b.repetitions;
      pooled.mean_s = (a.mean_s * a.repetitions + b.mean_s * b.repetitions) / pooled.repetitions;
      const double spread = a.stddev_s * a.stddev_s * a.repetitions +
                            b.stddev_s * b.stddev_s * b.repetitions +
                            a.repetitions * (a.mean_s - pooled.mean_s) * (a.mean_s - pooled.mean_s) +
                            b.repetitions * (b.mean_s - pooled.mean_s) * (b.mean_s - pooled.mean_s);
      pooled.stddev_s = std::sqrt(spread / pooled.repetitions);
      pooled.median_s = 0.5 * (a.median_s + b.median_s);  // the runs' raw times are gone
      pooled.min_s = std::min(a.min_s, b.min_s);
      op.contended = pooled;
    } else if (x || y) {
      op.contended = (x ? x : y)->alone;
    }
  }
}

NetworkProfile read_pingpong_results(const std::string& text, const std::string& origin) {
  const json root = parse_json(text, origin);
  detail::JsonReader in(origin);
  const std::string format = in.string(root, Pointer(), "format");
  if (root.contains("format") && format != "plait.pingpong") {
    in.problem(Pointer("/format"), "expected \"plait.pingpong\", got \"" + format + "\"");
  }
  if (in.integer(root, Pointer(), "version", 1) != 1 && root.contains("version")) {
    in.problem(Pointer("/version"), "unsupported version (this plait reads 1)");
  }
  NetworkProfile network;
  network.ranks = static_cast<int>(in.integer(root, Pointer(), "ranks", 2));
  for (const char* list_name : {"pingpong", "allreduce"}) {
    const json* list = in.array(root, Pointer(), list_name);
    auto& target = std::string_view(list_name) == "pingpong" ? network.pingpong : network.allreduce;
    for (std::size_t i = 0; list && i < list->size(); ++i) {
      const Pointer here = Pointer() / std::string(list_name) / i;
      const json& entry = (*list)[i];
      MessageMeasurement message;
      message.bytes = in.integer(entry, here, "bytes", 1, std::numeric_limits<std::int64_t>::max());
      message.time.mean_s = in.number(entry, here, "mean_s", 1e-15, "time");
      message.time.median_s = in.number(entry, here, "median_s", 1e-15, "time");
      message.time.min_s = in.number(entry, here, "min_s", 1e-15, "time");
      message.time.stddev_s = in.seconds(entry, here, "stddev_s");
      message.time.repetitions = static_cast<int>(in.integer(entry, here, "repetitions", 1));
      target.push_back(message);
    }
  }
  in.throw_if_problems();
  std::vector<MessageSample> samples;
  for (const MessageMeasurement& message : network.pingpong) {
    samples.push_back({message.bytes, message.time.min_s});
  }
  try {
    network.model = fit_message_model(samples).model;
  } catch (const Error& error) {
    throw error.within(origin);
  }
  return network;
}

std::vector<double> read_speed_probes(const nlohmann::json& report, const std::string& origin) {
  std::vector<double> probes;
  double sum = 0;
  int probed = 0;
  if (report.is_object() && report.contains("speed_probe_s") && report.at("speed_probe_s").is_array())
    for (const auto& probe : report.at("speed_probe_s")) {
      probes.push_back(probe.is_number() ? probe.get<double>() : -1);
      if (probes.back() > 0) sum += probes.back(), ++probed;
    }
  if (probed == 0) throw Error(origin, "has no speed_probe_s (a plait-exec run without --speed-probe?)");
  for (double& probe : probes)
    if (!(probe > 0)) probe = sum / probed;
  return probes;
}

double mean_speed_probe(const std::vector<double>& probes) {
  double sum = 0;
  for (double probe : probes) sum += probe;
  return probes.empty() ? 0 : sum / double(probes.size());
}

}  // namespace plait::costmodels
