// One interpreter for every backend: it walks a rank's sections and ops in
// order; a Backend supplies the compute ops on its own state, a Comm moves
// messages. The reference, torch and cost backends add only their ops.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "plait/schedule/program.hpp"

namespace plait::schedule {

class Backend {
 public:
  virtual ~Backend() = default;
  // Every op that is not communication (input, zero, copy, sub, norm_sq, step,
  // step_adjoint, loss). Registers (Space::reg) live in the backend too.
  virtual void compute(const Op& op) = 0;
  virtual double read_register(const Buffer& reg) = 0;
  virtual void write_register(const Buffer& reg, double value) = 0;
  // Bytes of a buffer for a send, and assignment from a received message.
  // A backend without data (the cost backend) returns an empty span / ignores.
  virtual std::span<const std::byte> bytes_of(const Buffer& buffer) = 0;
  virtual void assign_bytes(const Buffer& buffer, std::span<const std::byte> bytes) = 0;
  // The gradients a grad_allreduce sums (blocks [op.block, op.block + op.span),
  // packed), and their sum put back. A backend without data keeps these defaults.
  virtual std::vector<std::byte> gradient_bytes(const Op&) { return {}; }
  virtual void assign_gradient_bytes(const Op&, std::span<const std::byte>) {}
  // The same for the parameters an all_gather assembles (ZeRO / FSDP).
  virtual std::vector<std::byte> parameter_bytes(const Op&) { return {}; }
  virtual void assign_parameter_bytes(const Op&, std::span<const std::byte>) {}
};

class Comm {
 public:
  virtual ~Comm() = default;
  // Sends are asynchronous: they never block (the validator checks programs
  // under this rule). Messages between two ranks match in order.
  virtual void send(const Op& op, std::span<const std::byte> bytes) = 0;
  virtual std::vector<std::byte> recv(const Op& op) = 0;
  // Collectives over `group` (collective_group: ascending ranks, this one among them).
  virtual double allreduce_sum(const Op& op, std::span<const int> group, double value) = 0;
  // Element-wise sum of every group member's gradient bytes (the model's
  // dtype), the same bytes on every member. This default serves a group of one
  // rank and throws plait::Error for more: comms spanning ranks override it.
  virtual std::vector<std::byte> allreduce_gradients(const Op& op, std::span<const int> group,
                                                     std::span<const std::byte> gradients);
  // Sharded data parallelism, on the packed buffers above (a backend without
  // data passes empty ones), each member's shard 1 / group of op.bytes
  // (member k, ascending, holds shard k). reduce_scatter: returns the buffer
  // with this member's shard summed over the group and the rest zero (freed);
  // all_gather: returns the buffer with every shard taken from its member.
  // These defaults serve a group of one and throw plait::Error for more.
  virtual std::vector<std::byte> reduce_scatter_gradients(const Op& op, std::span<const int> group,
                                                          std::span<const std::byte> gradients);
  virtual std::vector<std::byte> all_gather_parameters(const Op& op, std::span<const int> group,
                                                       std::span<const std::byte> parameters);
  // The activation all-reduces (`count`, each of `bytes`) a block step or a
  // vocabulary-parallel op takes in a tensor-parallel group (tensor_group,
  // tensor_allreduces), after the op's compute. The default serves a group
  // of one and throws plait::Error for more.
  virtual void tensor_allreduces(const Op& op, std::span<const int> group, int count, std::int64_t bytes);
  // Before a compute op: a comm that runs prefetched all_gathers (Op::overlap)
  // in the background waits here for those of a block step's block.
  virtual void before_compute(const Op&) {}
  // The end of the rank's program: a comm that runs overlapped gradient
  // all-reduces (Op::overlap) in the background waits for them here; one that
  // runs them in place (the executor) has nothing to wait for.
  virtual void finish() {}
};

// Where an op sits: for listeners (trace recorders, progress).
struct OpRef {
  int rank = 0;
  int section = 0;
  int repetition = 0;
  int index = 0;  // op index within its section
  const Op* op = nullptr;
};

class OpListener {
 public:
  virtual ~OpListener() = default;
  virtual void before(const OpRef&) {}
  virtual void after(const OpRef&) {}
};

struct RunResult {
  std::vector<double> forward_residual_norms;
  std::vector<double> adjoint_residual_norms;
  int forward_iterations = 0;
  int adjoint_iterations = 0;
};

// Runs rank `rank` of `program`. tolerance > 0 (program.tolerance) stops
// iteration sections once the phase's last recorded residual norm is below it.
RunResult interpret(const Program& program, int rank, Backend& backend, Comm& comm,
                    OpListener* listener = nullptr);

}  // namespace plait::schedule
