// Op pricers: the analytic roofline on a device sheet, and a measured profile.
#include <algorithm>
#include <mutex>

#include "plait/costmodels/profile.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

bool is_free(const schedule::Op& op) {
  return schedule::is_communication(op.kind) || op.kind == schedule::OpKind::record_norm;
}

// Seconds per cost key for one shape, computed once per shape: the simulator
// prices millions of ops of a handful of shapes.
class ShapeCache {
 public:
  template <class Compute>
  double seconds(const schedule::ModelDesc& model, std::string_view key, Compute&& compute) const {
    std::lock_guard lock(mutex_);
    for (const auto& [shape, table] : entries_) {
      // The same kernels (same_shape), run the same way: a sequence-parallel
      // or selectively recomputing block prices differently.
      if (same_shape(shape, model) && shape.kind == model.kind && shape.sequence_parallel == model.sequence_parallel &&
          shape.selective_recompute == model.selective_recompute)
        return lookup(table, key, model);
    }
    entries_.emplace_back(model, compute(model));
    return lookup(entries_.back().second, key, model);
  }

 private:
  static double lookup(const std::map<std::string, double, std::less<>>& table,
                       std::string_view key, const schedule::ModelDesc& model) {
    const auto found = table.find(key);
    if (found == table.end()) {
      throw Error("cost model", "no price for cost key \"" + std::string(key) + "\" at shape " +
                                    shape_name(model));
    }
    return found->second;
  }

  mutable std::mutex mutex_;
  mutable std::vector<std::pair<schedule::ModelDesc, std::map<std::string, double, std::less<>>>>
      entries_;
};

// Roofline seconds at full efficiency, per key: the transformer model, or the
// Program's own work table for the reference models.
std::map<std::string, double, std::less<>> roofline_table(const schedule::Program& program,
                                                          const DeviceSheet& device) {
  std::map<std::string, double, std::less<>> table;
  if (program.model.kind == "transformer") {
    for (const auto& [key, work] : transformer_work(schedule::micro_batch_model(program))) {
      table[key] = roofline_seconds(work, device, program.model.dtype);
    }
  } else {
    for (const auto& [key, work] : program.work) {
      table[key] = roofline_seconds(work, device, "fp32");
    }
  }
  return table;
}

// Seconds per key on the device (device_seconds: launches overlapped with
// running), or roofline / efficiency for the reference models.
std::map<std::string, double, std::less<>> device_table(const schedule::Program& program, const DeviceSheet& device) {
  std::map<std::string, double, std::less<>> table;
  if (program.model.kind != "transformer") {
    for (auto& [key, seconds] : table = roofline_table(program, device)) seconds /= device.efficiency;
    return table;
  }
  for (const auto& [key, work] : transformer_work(schedule::micro_batch_model(program)))
    table[key] = key == schedule::cost_keys::update ? roofline_seconds(work, device, program.model.dtype) / device.efficiency
                                                    : device_seconds(work, device, program.model.dtype);
  return table;
}

// An update op's price: the table's is one parameter's; its one kernel runs
// once launched, as device_seconds prices a one-part op.
double per_update(const schedule::Op& op, const schedule::ModelDesc& model, double seconds, const DeviceSheet& device) {
  if (op.kind != schedule::OpKind::update) return seconds;
  return device.kernel_overhead_s + seconds * updated_parameters(op, model);
}

// A table's prices at `model` with that shape's factors, if `factors` has it:
// its block steps' keys times `block`, its ends' (input, loss) times `ends`.
void apply_shape_factors(std::map<std::string, double, std::less<>>& table, const schedule::ModelDesc& model,
                         const std::vector<ShapeFactors>& factors) {
  const auto found = std::find_if(factors.begin(), factors.end(), [&](const auto& f) { return same_shape(f.shape, model); });
  if (found == factors.end()) return;
  for (auto& [key, seconds] : table) {
    if (key.starts_with("block.")) seconds *= found->block;
    if (key == schedule::cost_keys::input || key == schedule::cost_keys::loss) seconds *= found->ends;
  }
}

// TorchBraid's buffer blocks (ModelDesc::buffer_blocks) run with the ends: the
// open ones' forward and backward priced into the input op, the close ones'
// into the loss op, each a kept-graph forward and a backward with parameter
// gradients. The open blocks' backward really runs after the adjoint, on the
// same rank: the rank's total, and so the step's critical path through it, is
// the same.
void add_buffer_blocks(std::map<std::string, double, std::less<>>& table, const schedule::ModelDesc& model) {
  if (model.buffer_blocks <= 0) return;
  const double block = table.at(std::string(schedule::cost_keys::block_forward_keep)) +
                       table.at(std::string(schedule::cost_keys::block_gradient));
  table.at(std::string(schedule::cost_keys::input)) += model.buffer_blocks * block;
  table.at(std::string(schedule::cost_keys::loss)) += model.buffer_blocks * block;
}

// A send or recv costs the rank the device's message overhead (0 by default).
bool is_message(const schedule::Op& op) {
  return op.kind == schedule::OpKind::send || op.kind == schedule::OpKind::recv;
}

class AnalyticPricer final : public OpPricer {
 public:
  AnalyticPricer(DeviceSheet device, std::vector<ShapeFactors> factors)
      : device_(std::move(device)), factors_(std::move(factors)) {
    if (!(device_.efficiency > 0)) {
      throw Error("device sheet \"" + device_.name + "\"", "efficiency must be positive");
    }
  }

  double op_seconds(const schedule::Program& program, const schedule::Op& op) const override {
    if (is_message(op)) return device_.message_overhead_s;
    if (is_free(op)) return 0;
    const schedule::ModelDesc model = schedule::micro_batch_model(program);
    const double seconds = cache_.seconds(model, schedule::cost_key(op), [&](const auto& shape) {
      auto table = device_table(program, device_);
      apply_shape_factors(table, shape, factors_);
      add_buffer_blocks(table, shape);
      return table;
    });
    return per_update(op, model, seconds, device_);
  }

 private:
  DeviceSheet device_;
  std::vector<ShapeFactors> factors_;
  ShapeCache cache_;
};

class ProfilePricer final : public OpPricer {
 public:
  ProfilePricer(Profile profile, Contention contention)
      : profile_(std::move(profile)), contention_(contention) {}

  double op_seconds(const schedule::Program& program, const schedule::Op& op) const override {
    if (is_message(op)) return profile_.device.message_overhead_s;
    if (is_free(op)) return 0;
    // Ops run on one micro-batch: priced at that shape.
    const schedule::ModelDesc model = schedule::micro_batch_model(program);
    const double seconds = per_update(op, model, cache_.seconds(model, schedule::cost_key(op), [&](const auto& shape) {
      return table(program, shape);
    }), profile_.device);
    if (program.kind != "serial" || !schedule::is_block_step(op.kind)) return seconds;
    const SpeedReference* reference = profile_.find_speed_reference(model);
    return reference ? seconds * reference->serial_factor : seconds;
  }

  double idle_factor(const schedule::Program& program, double idle_s) const override {
    const SpeedReference* reference = profile_.find_speed_reference(schedule::micro_batch_model(program));
    return reference ? reference->idle.factor(idle_s) : 1;
  }

 private:
  // Measured where the profile has the key at this shape; otherwise the fitted
  // roofline (per-key overhead and efficiency, else the device's efficiency).
  std::map<std::string, double, std::less<>> table(const schedule::Program& program,
                                                   const schedule::ModelDesc& model) const {
    auto table = roofline_table(program, profile_.device);
    const auto unfitted = device_table(program, profile_.device);
    const bool contended = contention_ == Contention::contended;
    // A profile from before block.fwd_keep had its own key prices those steps as block.fwd.
    const bool keep_unmeasured = !profile_.find(schedule::cost_keys::block_forward_keep, model) &&
                                 !profile_.fits.contains(std::string(schedule::cost_keys::block_forward_keep));
    for (auto& [key, seconds] : table) {
      const auto fit = profile_.fits.find(key);
      if (const OpMeasurement* measured = profile_.find(key, model)) {
        if (contended && measured->contended) {
          seconds = measured->contended->median_s;
          continue;
        }
        seconds = measured->alone.median_s;
      } else if (fit != profile_.fits.end()) {
        seconds = fit->second.seconds(seconds);
      } else {
        seconds = unfitted.at(key);
      }
      if (contended && fit != profile_.fits.end()) seconds *= fit->second.contention_factor;
    }
    const auto forward = table.find(schedule::cost_keys::block_forward);
    const auto keep = table.find(schedule::cost_keys::block_forward_keep);
    if (keep_unmeasured && forward != table.end() && keep != table.end()) keep->second = forward->second;
    // A split backward's weight half is not benchmarked: the gradient's price less the adjoint's.
    const auto gradient = table.find(schedule::cost_keys::block_gradient);
    const auto adjoint = table.find(schedule::cost_keys::block_adjoint);
    const auto weight = table.find(schedule::cost_keys::block_weight_gradient);
    if (weight != table.end() && gradient != table.end() && adjoint != table.end() &&
        !profile_.find(schedule::cost_keys::block_weight_gradient, model))
      weight->second = std::max(0.0, gradient->second - adjoint->second);
    apply_shape_factors(table, model, profile_.shape_factors);
    add_buffer_blocks(table, model);
    return table;
  }

  Profile profile_;
  Contention contention_;
  ShapeCache cache_;
};

}  // namespace

std::unique_ptr<OpPricer> make_analytic_pricer(const DeviceSheet& device, std::vector<ShapeFactors> factors) {
  return std::make_unique<AnalyticPricer>(device, std::move(factors));
}

std::unique_ptr<OpPricer> make_profile_pricer(const Profile& profile) {
  return make_profile_pricer(profile, Contention::alone);
}

std::unique_ptr<OpPricer> make_profile_pricer(const Profile& profile, Contention contention) {
  if (!(profile.device.peak_flops_fp32 > 0) || !(profile.device.memory_bandwidth > 0) ||
      !(profile.device.efficiency > 0)) {
    throw Error("profile", "device figures must be positive to price unmeasured shapes");
  }
  return std::make_unique<ProfilePricer>(profile, contention);
}

}  // namespace plait::costmodels
