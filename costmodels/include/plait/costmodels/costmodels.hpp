// Cost models: what an op costs on a device, and what a message costs on a link.
//
// The simulator prices ops only through `OpPricer` and messages through
// `MessageModel`; where the numbers come from (a measured profile, or the
// analytic roofline on a device sheet) is this library's business.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/schedule/program.hpp"

namespace plait::costmodels {

// Piecewise alpha-beta: one segment per protocol regime (eager, rendezvous, ...).
struct MessageSegment {
  std::int64_t max_bytes = 0;  // segment covers sizes <= max_bytes (last one: all larger)
  double latency_s = 0;        // alpha
  double seconds_per_byte = 0; // beta
};

struct MessageModel {
  std::vector<MessageSegment> segments;  // sorted by max_bytes
  double seconds(std::int64_t bytes) const;
};

// A device's public figures (device sheets) for the analytic roofline model.
struct DeviceSheet {
  std::string name;
  double peak_flops_fp32 = 0;   // FLOP/s
  double peak_flops_bf16 = 0;   // FLOP/s
  double memory_bandwidth = 0;  // bytes/s
  double efficiency = 1.0;      // fraction of roofline reached (fitted from a profile)
  double memory_bytes = 0;      // device memory; 0: this machine's (shared by its devices)
  // A GPU's kernels (fitted by calibrate --from-steps; the defaults change nothing):
  // a GEMM whose smallest dimension is m reaches m / (m + gemm_half_dim) of
  // the efficiency; memory-bound kernels memory_efficiency of it; the host
  // takes kernel_overhead_s to launch each kernel (part of an op), and a
  // kernel runs once launched and its predecessor done (device_seconds).
  double gemm_half_dim = 0;
  double memory_efficiency = 1.0;
  double kernel_overhead_s = 0;
  // Host time a rank spends on each point-to-point send and receive besides
  // the wire (Megatron's blocking stage-to-stage exchange); pricers charge it
  // as the price of send and recv ops.
  double message_overhead_s = 0;
};

// A link's public figures (link sheets).
struct LinkSheet {
  std::string name;
  double latency_s = 0;
  double bandwidth_bytes_per_s = 0;
};

// Prices compute ops of a Program on one device.
class OpPricer {
 public:
  virtual ~OpPricer() = default;
  // Seconds for `op` of `program` on this device; for send and recv the
  // device's message overhead, for collectives 0.
  virtual double op_seconds(const schedule::Program& program, const schedule::Op& op) const = 0;
  // How many times its price a block step costs when its rank did no block
  // step for `idle_s` seconds before it (waiting for a message); 1 by default.
  virtual double idle_factor(const schedule::Program&, double /*idle_s*/) const { return 1; }
};

// A measured profile (plait calibrate's output); format documented in profile.cpp.
struct Profile;  // defined in plait/costmodels/profile.hpp
Profile load_profile(const std::string& path);  // validates; throws plait::Error

// Shipped sheets, by name ("h100-sxm", "a100-80gb", "h200", "local-cpu"; "nvlink4",
// "infiniband-ndr", "infiniband-hdr", "ethernet-100g", ...). Unknown name: plait::Error.
DeviceSheet device_sheet(std::string_view name);
LinkSheet link_sheet(std::string_view name);
std::vector<std::string> device_sheet_names();
std::vector<std::string> link_sheet_names();

// Per-shape corrections fitted to measured steps (calibrate --from-steps),
// where a smooth kernel model misses one shape's kernels: at `shape` (a
// micro-batch's ModelDesc, tensor parallelism and vocabulary included) block
// steps cost `block` times, and a step's ends (the embedding, the head and its
// loss) `ends` times, what the model says. Applied where a pricer computes a
// shape's prices, once a shape.
struct ShapeFactors {
  schedule::ModelDesc shape;
  double block = 1, ends = 1;
  int rows = 0;  // measured steps they were fitted on
};

// Pricers: the analytic roofline on a device sheet (with `factors` at their
// shapes), or a measured profile (ops and shapes it lacks fall back to the
// roofline with the profile's fitted efficiency; its shape factors applied).
std::unique_ptr<OpPricer> make_analytic_pricer(const DeviceSheet& device, std::vector<ShapeFactors> factors = {});
std::unique_ptr<OpPricer> make_profile_pricer(const Profile& profile);

// Whether the priced rank shares its machine with ranks doing the same work
// (the profile's contended measurements, or alone times x the fitted factor).
// make_profile_pricer(profile) prices `alone`.
enum class Contention { alone, contended };
std::unique_ptr<OpPricer> make_profile_pricer(const Profile& profile, Contention contention);

}  // namespace plait::costmodels
