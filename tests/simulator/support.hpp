// Test helpers: a constant pricer, hand-built programs and platforms, and a
// way to run a simulation in a child process (one SimGrid engine per process).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>

#include "plait/schedule/program.hpp"
#include "plait/simulator/simulator.hpp"

namespace plait::simulator::testing {

// Charges every op of a cost key the same seconds (communication ops 0).
class ConstantPricer final : public costmodels::OpPricer {
 public:
  explicit ConstantPricer(std::map<std::string, double> seconds_by_key, double otherwise = 0)
      : seconds_by_key_(std::move(seconds_by_key)), otherwise_(otherwise) {}
  double op_seconds(const schedule::Program&, const schedule::Op& op) const override {
    if (schedule::is_communication(op.kind)) return 0;
    const auto it = seconds_by_key_.find(std::string(schedule::cost_key(op)));
    return it == seconds_by_key_.end() ? otherwise_ : it->second;
  }

 private:
  std::map<std::string, double> seconds_by_key_;
  double otherwise_;
};

inline PricerFactory constant_pricers(std::map<std::string, double> seconds_by_key, double otherwise = 0) {
  auto pricer = std::make_shared<ConstantPricer>(std::move(seconds_by_key), otherwise);
  return [pricer](const DeviceUse&) { return pricer; };
}

// Block steps priced by kind: forward, adjoint (state only) and adjoint with
// parameter gradients, whether they use a kept graph or recompute it.
inline PricerFactory block_pricers(double forward_s, double adjoint_s, double gradient_s, double otherwise = 0,
                                   std::map<std::string, double> more = {}) {
  more.insert({{"block.fwd", forward_s},
               {"block.fwd_keep", forward_s},
               {"block.adj", adjoint_s},
               {"block.adj_recompute", adjoint_s},
               {"block.adj_grad", gradient_s},
               {"block.adj_grad_recompute", gradient_s}});
  return constant_pricers(std::move(more), otherwise);
}

inline LinkSpec link(double latency_s, double bandwidth_bytes_per_s) {
  return LinkSpec{"", latency_s, bandwidth_bytes_per_s};
}

// `nodes` nodes of `devices` devices each, block placement.
inline PlatformSpec cluster(int nodes, int devices, LinkSpec intra, LinkSpec inter = link(0, 1e9),
                            Topology topology = Topology::star) {
  PlatformSpec spec;
  spec.name = "test";
  spec.origin = "test-platform";
  spec.nodes = nodes;
  spec.node_devices.assign(static_cast<std::size_t>(devices), DeviceSpec{"test-device", ""});
  spec.intra_node = intra;
  spec.inter_node.topology = topology;
  spec.inter_node.link = inter;
  return spec;
}

inline schedule::Op step_op(int point) {
  schedule::Op op;
  op.kind = schedule::OpKind::step;
  op.dst = {schedule::Space::u, 0, point + 1};
  op.a = {schedule::Space::u, 0, point};
  op.block = point;
  op.span = 1;
  return op;
}

inline schedule::Op message_op(schedule::OpKind kind, int peer, std::int64_t bytes, int point) {
  schedule::Op op;
  op.kind = kind;
  op.peer = peer;
  op.bytes = bytes;
  (kind == schedule::OpKind::send ? op.a : op.dst) = {schedule::Space::u, 0, point};
  return op;
}

inline schedule::Op allreduce_op(std::int64_t bytes) {
  schedule::Op op;
  op.kind = schedule::OpKind::allreduce;
  op.dst = {schedule::Space::reg, 0, 0};
  op.bytes = bytes;
  return op;
}

// A Program whose rank r runs ops[r] once, in one section.
inline schedule::Program program_of(const std::vector<std::vector<schedule::Op>>& ops, int layers) {
  schedule::Program program;
  program.kind = "mgrit";
  program.layers = layers;
  program.ranks = static_cast<int>(ops.size());
  for (const auto& rank_ops : ops) {
    schedule::Section section;
    section.name = "sweep";
    section.phase = schedule::Phase::forward;
    section.ops = rank_ops;
    program.rank_programs.push_back(schedule::RankProgram{{section}});
  }
  return program;
}

// The forward sweep pipelined over P ranks, `per_rank` steps each: rank r
// waits for the state from r-1, steps, and hands it to r+1.
inline schedule::Program pipelined_sweep(int ranks, int per_rank, std::int64_t bytes) {
  std::vector<std::vector<schedule::Op>> ops(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    const int first = r * per_rank;
    if (r > 0) ops[r].push_back(message_op(schedule::OpKind::recv, r - 1, bytes, first));
    for (int i = 0; i < per_rank; ++i) ops[r].push_back(step_op(first + i));
    if (r + 1 < ranks) ops[r].push_back(message_op(schedule::OpKind::send, r + 1, bytes, first + per_rank));
  }
  return program_of(ops, ranks * per_rank);
}

// Runs `simulation` in a forked child (its own SimGrid engine) and returns
// the number it produced; NaN when the child failed.
inline double in_child_process(const std::function<double()>& simulation) {
  int fds[2];
  if (pipe(fds) != 0) return std::numeric_limits<double>::quiet_NaN();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    double value = std::numeric_limits<double>::quiet_NaN();
    try {
      value = simulation();
    } catch (...) {
    }
    const ssize_t written = write(fds[1], &value, sizeof value);
    _exit(written == sizeof value ? 0 : 1);
  }
  close(fds[1]);
  double value = std::numeric_limits<double>::quiet_NaN();
  if (read(fds[0], &value, sizeof value) != sizeof value) value = std::numeric_limits<double>::quiet_NaN();
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return value;
}

}  // namespace plait::simulator::testing
