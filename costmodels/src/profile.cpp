// Profile lookups, shape names and the fits that turn measurements into a model.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "detail/line_fit.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

bool operator==(const MessageSegment& x, const MessageSegment& y) {
  return x.max_bytes == y.max_bytes && x.latency_s == y.latency_s &&
         x.seconds_per_byte == y.seconds_per_byte;
}
bool operator==(const MessageModel& x, const MessageModel& y) { return x.segments == y.segments; }
bool operator==(const DeviceSheet& x, const DeviceSheet& y) {
  return x.name == y.name && x.peak_flops_fp32 == y.peak_flops_fp32 &&
         x.peak_flops_bf16 == y.peak_flops_bf16 && x.memory_bandwidth == y.memory_bandwidth &&
         x.efficiency == y.efficiency && x.gemm_half_dim == y.gemm_half_dim &&
         x.memory_efficiency == y.memory_efficiency && x.kernel_overhead_s == y.kernel_overhead_s &&
         x.message_overhead_s == y.message_overhead_s;
}
bool operator==(const KeyFit& x, const KeyFit& y) {
  return x.efficiency == y.efficiency && x.overhead_s == y.overhead_s &&
         x.contention_factor == y.contention_factor;
}
Timing timing_of(std::vector<double> seconds) {
  if (seconds.empty()) throw Error("timing", "no repetitions");
  std::sort(seconds.begin(), seconds.end());
  Timing timing;
  const std::size_t n = seconds.size();
  timing.repetitions = static_cast<int>(n);
  timing.min_s = seconds.front();
  timing.median_s = n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2;
  for (double s : seconds) timing.mean_s += s;
  timing.mean_s /= double(n);
  double squares = 0;
  for (double s : seconds) squares += (s - timing.mean_s) * (s - timing.mean_s);
  if (n > 1) timing.stddev_s = std::sqrt(squares / double(n - 1));
  return timing;
}

bool operator==(const NetworkProfile& x, const NetworkProfile& y) {
  return x.ranks == y.ranks && x.pingpong == y.pingpong && x.allreduce == y.allreduce &&
         x.model == y.model && x.gradient_allreduce == y.gradient_allreduce &&
         x.gradient_pass_bytes_per_s == y.gradient_pass_bytes_per_s;
}
bool operator==(const SpeedReference& x, const SpeedReference& y) {
  return same_shape(x.shape, y.shape) && x.alone_s == y.alone_s && x.contended_s == y.contended_s &&
         x.idle == y.idle && x.serial_factor == y.serial_factor;
}

bool operator==(const ShapeFactors& x, const ShapeFactors& y) {
  return same_shape(x.shape, y.shape) && x.block == y.block && x.ends == y.ends && x.rows == y.rows;
}

IdleSlowdown fit_idle_slowdown(std::span<const std::pair<double, double>> idle_and_ratio) {
  constexpr double min_idle_s = 100e-6;  // shorter gaps are the ops between waits, not waits
  constexpr std::size_t min_samples = 8;
  double xy = 0, xx = 0;
  std::size_t count = 0;
  for (const auto& [idle_s, ratio] : idle_and_ratio) {
    if (!(idle_s >= min_idle_s) || !std::isfinite(idle_s) || !(ratio > 0) || !std::isfinite(ratio)) continue;
    const double x = 1 - std::exp(-idle_s / idle_time_constant_s);
    xy += x * (ratio - 1);
    xx += x * x;
    ++count;
  }
  if (count < min_samples) return {};
  const double slowdown = std::clamp(xy / xx, 0.0, 2.0);
  return slowdown > 0 ? IdleSlowdown{slowdown, idle_time_constant_s} : IdleSlowdown{};
}

double IdleSlowdown::factor(double idle_s) const {
  if (!(slowdown > 0) || !(time_constant_s > 0) || !(idle_s > 0)) return 1;
  return 1 + slowdown * (1 - std::exp(-idle_s / time_constant_s));
}

bool operator==(const Profile& x, const Profile& y) {
  return x.machine == y.machine && x.device == y.device && x.ops == y.ops && x.fits == y.fits &&
         x.network == y.network && x.speed_references == y.speed_references &&
         x.shape_factors == y.shape_factors;
}

bool same_shape(const schedule::ModelDesc& x, const schedule::ModelDesc& y) {
  return x.d_model == y.d_model && x.heads == y.heads && x.seq == y.seq && x.batch == y.batch &&
         x.mlp_ratio == y.mlp_ratio && x.dtype == y.dtype && x.causal == y.causal &&
         x.vocab == y.vocab && x.tensor_parallel == y.tensor_parallel;
}

const OpMeasurement* Profile::find(std::string_view key, const schedule::ModelDesc& model) const {
  for (const OpMeasurement& op : ops) {
    if (op.key == key && same_shape(op.shape, model)) return &op;
  }
  return nullptr;
}

const SpeedReference* Profile::find_speed_reference(const schedule::ModelDesc& model) const {
  for (const SpeedReference& reference : speed_references) {
    if (same_shape(reference.shape, model)) return &reference;
  }
  return nullptr;
}

std::string shape_name(const schedule::ModelDesc& shape) {
  return "d" + std::to_string(shape.d_model) + ".h" + std::to_string(shape.heads) + ".s" +
         std::to_string(shape.seq) + ".b" + std::to_string(shape.batch) + ".r" +
         std::to_string(shape.mlp_ratio) + "." + shape.dtype + (shape.causal ? ".causal" : ".full");
}

schedule::ModelDesc parse_shape_name(std::string_view name) {
  const auto bad = [&](const std::string& why) {
    return Error("shape \"" + std::string(name) + "\"",
                 why + " (expected e.g. d256.h4.s128.b8.r4.fp32.causal)");
  };
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t dot = name.find('.', start);
    fields.push_back(name.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (fields.size() != 7) throw bad("expected 7 dot-separated fields");
  schedule::ModelDesc shape;
  const char letters[] = {'d', 'h', 's', 'b', 'r'};
  std::int32_t* targets[] = {&shape.d_model, &shape.heads, &shape.seq, &shape.batch,
                             &shape.mlp_ratio};
  for (int i = 0; i < 5; ++i) {
    const std::string_view field = fields[i];
    if (field.empty() || field[0] != letters[i]) {
      throw bad(std::string("field ") + std::to_string(i + 1) + " must start with '" +
                letters[i] + "'");
    }
    const char* end = field.data() + field.size();
    const auto [ptr, ec] = std::from_chars(field.data() + 1, end, *targets[i]);
    if (ec != std::errc() || ptr != end || *targets[i] <= 0) {
      throw bad("bad number in \"" + std::string(field) + "\"");
    }
  }
  shape.dtype = std::string(fields[5]);
  if (shape.dtype != "fp32" && shape.dtype != "bf16" && shape.dtype != "fp16") {
    throw bad("dtype must be fp32, bf16 or fp16");
  }
  if (fields[6] != "causal" && fields[6] != "full") throw bad("mask must be causal or full");
  shape.causal = fields[6] == "causal";
  if (shape.d_model % shape.heads != 0) throw bad("d_model must be divisible by heads");
  return shape;
}

KeyFit fit_key(std::span<const RooflineSample> samples) {
  if (samples.empty()) throw Error("efficiency fit", "no samples");
  std::vector<std::pair<double, double>> points;
  for (const RooflineSample& sample : samples) {
    if (!(sample.measured_s > 0) || !(sample.roofline_s >= 0)) {
      throw Error("efficiency fit", "measured times must be positive, roofline times not negative");
    }
    points.emplace_back(sample.roofline_s, sample.measured_s);
  }
  const detail::Line line = detail::fit_relative_line(points);
  KeyFit fit;
  fit.overhead_s = line.alpha;
  // beta = 0 means time does not grow with work: treat the work term as free.
  fit.efficiency = line.beta > 0 ? 1.0 / line.beta : 1e6;
  return fit;
}

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

bool is_block_key(std::string_view key) {
  namespace keys = schedule::cost_keys;
  return key == keys::block_forward || key == keys::block_forward_keep || key == keys::block_adjoint ||
         key == keys::block_gradient || key == keys::block_adjoint_recompute || key == keys::block_gradient_recompute;
}

}  // namespace

void fit_profile(Profile& profile) {
  std::map<std::string, std::vector<RooflineSample>> samples;
  std::map<std::string, std::vector<double>> contention;
  std::vector<std::pair<double, double>> block_points;
  for (const OpMeasurement& op : profile.ops) {
    const auto work = transformer_work(op.shape);
    const auto found = work.find(op.key);
    if (found == work.end() || !(op.alone.median_s > 0)) continue;
    const double roofline = roofline_seconds(found->second, profile.device, op.shape.dtype);
    samples[op.key].push_back({roofline, op.alone.median_s});
    if (op.contended && op.contended->median_s > 0) {
      contention[op.key].push_back(op.contended->median_s / op.alone.median_s);
    }
    if (is_block_key(op.key)) block_points.emplace_back(roofline, op.alone.median_s);
  }
  profile.fits.clear();
  for (const auto& [key, key_samples] : samples) {
    KeyFit fit = fit_key(key_samples);
    if (contention.contains(key)) fit.contention_factor = median(contention[key]);
    profile.fits[key] = fit;
  }
  if (!block_points.empty()) {
    // Device efficiency without overhead: what a sheet-only model should assume.
    // Least squares of (roofline / efficiency - measured) / measured, through the
    // origin: with q = roofline / measured, efficiency = sum q^2 / sum q.
    double sum_q = 0, sum_qq = 0;
    for (const auto& [roofline, measured] : block_points) {
      const double q = roofline / measured;
      sum_q += q, sum_qq += q * q;
    }
    profile.device.efficiency = sum_qq / sum_q;
  }
}

}  // namespace plait::costmodels
