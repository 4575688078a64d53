// The simulator: every rank of a Program runs the one interpreter
// (schedule::interpret) as a SimGrid actor on its device, with a cost backend
// that charges each compute op its price and a comm whose messages cross the
// platform's links. No SimGrid in this header.
//
// SimGrid allows one simulation per process: `simulate` may be called once;
// a sweep runs one process per point.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/program.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::traces {
struct Trace;
}

namespace plait::simulator {

// automatic: recursive doubling for eager-sized messages (latency bound, as
// MPI does for small allreduces such as residual norms), ring above.
enum class AllreduceAlgorithm { automatic, ring, recursive_doubling };
std::string_view to_string(AllreduceAlgorithm algorithm);
AllreduceAlgorithm parse_allreduce_algorithm(std::string_view text);  // throws plait::Error

// One op as it ran on a rank, in simulated seconds.
struct OpEvent {
  int rank = 0;
  int section = 0;
  int repetition = 0;
  int op = 0;  // index within the section
  const schedule::Op* op_ref = nullptr;
  std::string_view cost_key;
  int level = 0;
  int point = -1;
  double start = 0;
  double end = 0;
  std::int64_t bytes = 0;
  int peer = -1;
  double waiting_s = 0;  // part of [start, end] spent before the awaited messages were sent
};

// Listeners see every op after it ran (trace writers, accounting, progress).
class EventListener {
 public:
  virtual ~EventListener() = default;
  virtual void on_start(int /*ranks*/) {}
  virtual void on_op(const OpEvent& event) = 0;
  virtual void on_finish(double /*makespan_s*/) {}
};

// A device as the ranks use it: ranks_on_node > 1 means other ranks run on
// the same machine at the same time (measured profiles price that contention).
struct DeviceUse {
  DeviceSpec device;
  int ranks_on_node = 1;
};

// Prices a device's ops; called once per distinct use of a device.
using PricerFactory =
    std::function<std::shared_ptr<const costmodels::OpPricer>(const DeviceUse& use)>;
// The default: the device's profile when it names one (or `profile_override`
// for every device when not empty), contended when the node runs other ranks;
// else the analytic model on its sheet.
PricerFactory default_pricers(const std::string& profile_override = "");
// `pricers` with every compute op's price multiplied by compute_scale (> 0):
// 0.5 is a device twice as fast; a sweep passes the machine's measured speed
// relative to its calibration.
PricerFactory scaled_pricers(PricerFactory pricers, double compute_scale);
// A compute scale a pricer accepts: finite and > 0.
bool valid_compute_scale(double compute_scale);
// One OpPricer with every compute op's price multiplied by `compute_scale` (> 0).
std::shared_ptr<const costmodels::OpPricer> scaled_pricer(std::shared_ptr<const costmodels::OpPricer> pricer,
                                                          double compute_scale);

struct SimulateOptions {
  std::string network_model = "CM02";
  bool cross_traffic = false;
  AllreduceAlgorithm allreduce = AllreduceAlgorithm::automatic;
  // Messages up to this size are eager: their data flows as soon as they are
  // sent. Larger ones are rendezvous, as in MPI and NCCL: the sender does not
  // block, but the data flows once the receive is posted. < 0: all eager.
  std::int64_t eager_limit_bytes = 65536;
  // Measured piecewise alpha-beta (a profile's message model) for messages
  // between devices of one node: a lone message of b bytes then takes the
  // model's time instead of the intra-node link's; sharing still applies.
  std::optional<costmodels::MessageModel> intra_node_messages;
  std::vector<std::string> simgrid_config;  // extra "name:value" settings
  // Empty, or one factor (> 0) per rank multiplying that rank's compute ops
  // (and, for rank 0, the serial counterpart's): ranks whose cores run at
  // different speeds, as a speed probe measured them.
  std::vector<double> rank_compute_scales;
  std::vector<EventListener*> listeners;    // not owned
};

struct RankReport {
  int rank = 0;
  std::string host;
  double busy_s = 0;           // compute ops
  double communication_s = 0;  // messages in flight while the rank waited for them (its gradient stream's too)
  double idle_s = 0;           // waiting for a peer to send, and after finishing
  // Busy, communication and idle add up to the step. Beside them: the time the
  // rank's gradient stream (--dp-overlap, ZeRO) spent on collectives while the rank
  // went on; what the rank waited for it at the end is in communication_s.
  double overlapped_communication_s = 0;
};

// A stretch of the critical path on one rank (ops run back to back), reached
// from the previous stretch by a message.
struct PathSegment {
  int rank = 0;
  double start = 0;
  double end = 0;
  double compute_s = 0;
  int ops = 0;
};

struct CriticalPath {
  double length_s = 0;
  double compute_s = 0;
  double communication_s = 0;  // messages (send to arrival) on the path
  int messages = 0;
  std::int64_t block_steps = 0;          // block.fwd/adj/adj_grad ops on the path
  double dry_run_block_steps = 0;        // schedule::critical_path_steps (unit step cost)
  std::vector<PathSegment> segments;     // in time order
};

struct Prediction {
  std::string platform;
  int ranks = 0;
  double predicted_time_s = 0;
  double serial_predicted_time_s = 0;  // build_serial of the same model on rank 0's device
  double speedup = 0;
  std::vector<RankReport> rank_reports;
  CriticalPath critical_path;
  std::int64_t ops = 0;       // ops run, all ranks, repetitions included
  std::int64_t messages = 0;  // point-to-point messages, collectives expanded
  double wall_s = 0;           // host seconds the simulation took, all included
  double platform_wall_s = 0;  // of which building the platform (SimGrid's name checks grow as devices^2)
};

// Simulates `program` (fixed iteration counts: tolerance 0) on `platform`.
// Throws plait::Error for bad input, and for a run that cannot finish: a
// deadlock names the waiting ranks and their ops.
Prediction simulate(const schedule::Program& program, const PlatformSpec& platform,
                    const PricerFactory& pricers, const SimulateOptions& options = {});

// Seconds `program` takes on one device priced by `pricer`, without SimGrid:
// only for one-rank programs (no messages). The speedup's denominator.
double single_device_seconds(const schedule::Program& program,
                             const costmodels::OpPricer& pricer);

// {"predicted_time_s", "serial_predicted_time_s", "speedup", "ranks": [...],
//  "critical_path": {...}, ...}
void to_json(nlohmann::json& out, const Prediction& prediction);

// Writes the predicted run as a plait.trace file (plait::traces, source
// "predicted") when the run finishes.
class TraceWriter : public EventListener {
 public:
  explicit TraceWriter(std::string path);
  ~TraceWriter() override;
  void on_start(int ranks) override;
  void on_op(const OpEvent& event) override;
  void on_finish(double makespan_s) override;

 private:
  std::string path_;
  std::unique_ptr<traces::Trace> trace_;
};

}  // namespace plait::simulator
