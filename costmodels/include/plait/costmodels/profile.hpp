// A measured profile: what `plait calibrate` writes and the profile pricer reads.
//
// File format {"format": "plait.profile", "version": 1} (documented in
// profile_json.cpp). Times are seconds, sizes bytes; "units" says so and is checked.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/costmodels/analytic.hpp"
#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/program.hpp"

namespace plait::costmodels {

// Repeated timing of one thing. Ops are fitted to and priced by the median: on a
// shared machine a preempted repetition shifts the mean, not the median. Messages
// use the minimum: a round trip needs both ranks on a core at once, and the
// simulated ranks own their cores.
struct Timing {
  double mean_s = 0;
  double median_s = 0;
  double min_s = 0;
  double stddev_s = 0;
  int repetitions = 0;
  friend bool operator==(const Timing&, const Timing&) = default;
};

// The Timing of repetitions (at least one; the standard deviation of a sample).
Timing timing_of(std::vector<double> seconds);

// One cost key at one shape (the transformer fields of a ModelDesc).
struct OpMeasurement {
  std::string key;
  schedule::ModelDesc shape;
  Timing alone;                     // the only busy process on the machine
  std::optional<Timing> contended;  // every other core running the same work
  friend bool operator==(const OpMeasurement&, const OpMeasurement&) = default;
};

// A block step that follows an idle stretch of its rank (waiting for a
// message) runs slower than one that follows another step: in 2-rank runs on
// this VM the first step after a 3+ ms wait took ~1.5x its usual time, the
// ones after it their usual time again. The first block step after `idle_s`
// without one costs factor(idle_s) = 1 + slowdown * (1 - exp(-idle_s /
// time_constant_s)) times its price; slowdown 0 (the default) is no effect.
struct IdleSlowdown {
  double slowdown = 0;
  double time_constant_s = 0;
  double factor(double idle_s) const;
  friend bool operator==(const IdleSlowdown&, const IdleSlowdown&) = default;
};

// The speed a shape's in-run timings were measured at: a plain forward step of
// each of the rank's blocks in turn, in a loop on every rank at once
// (plait-exec --speed-probe, the mean over ranks) in the same runs, on 1
// rank (alone_s) and on 2 ranks (contended_s). A sweep divides the probe of its
// own runs by these to price a point at the speed the machine had while it ran.
struct SpeedReference {
  schedule::ModelDesc shape;
  double alone_s = 0;
  double contended_s = 0;
  IdleSlowdown idle;  // fitted on the same 2-rank runs
  // The executor's serial step (one autograd graph over all blocks, timed in
  // the same 1-rank runs) over its price as separate block steps: its block
  // steps cost this times theirs (1: no correction).
  double serial_factor = 1;
};

struct MessageMeasurement {
  std::int64_t bytes = 0;
  Timing time;  // one-way time of one message (ping-pong round trip / 2), or one allreduce
  friend bool operator==(const MessageMeasurement&, const MessageMeasurement&) = default;
};

struct NetworkProfile {
  int ranks = 2;
  std::vector<MessageMeasurement> pingpong;
  std::vector<MessageMeasurement> allreduce;
  MessageModel model;  // fitted to pingpong
  // The executor's gradient all-reduce of data parallelism, timed inside real
  // runs over 2 replicas from when both had arrived: packing the gradients,
  // the exchange, the sum and unpacking (gradient_exchange.hpp). What it takes
  // beyond its messages is priced as one pass over the gradient at
  // gradient_pass_bytes_per_s (0: not measured; the platform's, if any).
  std::vector<MessageMeasurement> gradient_allreduce;
  double gradient_pass_bytes_per_s = 0;
};

struct MachineInfo {
  std::string cpu_model;
  int cores = 0;
  int threads = 0;  // intra-op threads per process during the measurement
  std::string torch_version;
  std::string device;  // "cpu" or "cuda:<name>"
  std::string date;    // ISO 8601, UTC
  std::string clock = "real_time";  // op times: "real_time" (wall) or "cpu_time"
  friend bool operator==(const MachineInfo&, const MachineInfo&) = default;
};

struct Profile {
  static constexpr int format_version = 1;
  MachineInfo machine;
  // Measured: peak FLOP/s from a large GEMM, bandwidth from a stream copy;
  // efficiency fitted over the block ops.
  DeviceSheet device;
  std::vector<OpMeasurement> ops;
  std::map<std::string, KeyFit> fits;  // per cost key, from ops (fit_profile)
  std::optional<NetworkProfile> network;
  std::vector<SpeedReference> speed_references;  // per shape timed in runs (may be empty)
  // Fitted to measured steps (calibrate --from-steps): per-shape corrections the
  // profile's pricer applies on top of the rest (may be empty).
  std::vector<ShapeFactors> shape_factors;

  // The measurement of `key` at the shape of `model`, or nullptr.
  const OpMeasurement* find(std::string_view key, const schedule::ModelDesc& model) const;
  // The speed reference of the shape of `model`, or nullptr.
  const SpeedReference* find_speed_reference(const schedule::ModelDesc& model) const;
};

bool operator==(const MessageSegment&, const MessageSegment&);
bool operator==(const MessageModel&, const MessageModel&);
bool operator==(const DeviceSheet&, const DeviceSheet&);
bool operator==(const KeyFit&, const KeyFit&);
bool operator==(const NetworkProfile&, const NetworkProfile&);
bool operator==(const SpeedReference&, const SpeedReference&);
bool operator==(const ShapeFactors&, const ShapeFactors&);
bool operator==(const Profile&, const Profile&);

// Shapes compare on the transformer fields only (d_model, heads, seq, batch,
// mlp_ratio, dtype, causal). Names: "d256.h4.s128.b8.r4.fp32.causal" (".full"
// when not causal); parse_shape_name throws plait::Error on bad text.
bool same_shape(const schedule::ModelDesc& x, const schedule::ModelDesc& y);
std::string shape_name(const schedule::ModelDesc& shape);
schedule::ModelDesc parse_shape_name(std::string_view name);

// Fits per-key overhead and efficiency (alone times) and contention factors
// (contended / alone), and device.efficiency (block ops, no overhead).
void fit_profile(Profile& profile);

// The idle slowdown's time constant. Fitted freely on one calibration's ~40
// steps after a wait it came out anywhere in 0.25-8 ms; on 96 such steps of
// five Programs (15 runs) the fit was flat and best between 2 and 5 ms.
inline constexpr double idle_time_constant_s = 3e-3;

// The idle slowdown of block steps at idle_time_constant_s, fitted on (idle
// seconds before the step, its duration / the usual duration of its cost key)
// of steps that followed a wait (idle >= 100 us): least squares of ratio - 1.
// Fewer than 8 such steps, or no slowdown: {0, 0}.
IdleSlowdown fit_idle_slowdown(std::span<const std::pair<double, double>> idle_and_ratio);

void to_json(nlohmann::json& out, const Profile& profile);
std::string dump_profile(const Profile& profile);
void save_profile(const Profile& profile, const std::string& path);
// Validates everything; one plait::Error naming `origin` and the JSON pointer(s).
Profile parse_profile(const std::string& text, const std::string& origin = "<string>");

}  // namespace plait::costmodels
