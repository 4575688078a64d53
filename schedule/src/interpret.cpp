// The one interpreter: sections, repeats, tolerance mode, residual history.
#include <cmath>

#include "plait/schedule/error.hpp"
#include "plait/schedule/interpret.hpp"

namespace plait::schedule {
namespace {

struct PhaseState {
  std::vector<double>* norms = nullptr;
  int* iterations = nullptr;
  bool converged = false;
};

}  // namespace

std::vector<std::byte> Comm::allreduce_gradients(const Op& op, std::span<const int> group,
                                                 std::span<const std::byte> gradients) {
  if (group.size() != 1)
    throw Error(std::string(to_string(op.kind)), "this backend's messages cannot sum gradients over " +
                                                     std::to_string(group.size()) + " ranks");
  return {gradients.begin(), gradients.end()};
}

std::vector<std::byte> Comm::reduce_scatter_gradients(const Op& op, std::span<const int> group,
                                                      std::span<const std::byte> gradients) {
  return allreduce_gradients(op, group, gradients);  // a group of one: its shard is the whole
}

std::vector<std::byte> Comm::all_gather_parameters(const Op& op, std::span<const int> group,
                                                   std::span<const std::byte> parameters) {
  if (group.size() != 1)
    throw Error(std::string(to_string(op.kind)), "this backend's messages cannot gather parameters over " +
                                                     std::to_string(group.size()) + " ranks");
  return {parameters.begin(), parameters.end()};
}

void Comm::tensor_allreduces(const Op& op, std::span<const int> group, int, std::int64_t) {
  if (group.size() != 1)
    throw Error(std::string(to_string(op.kind)), "this backend does not run tensor parallelism (" +
                                                     std::to_string(group.size()) + " ranks a block)");
}

RunResult interpret(const Program& program, int rank, Backend& backend, Comm& comm,
                    OpListener* listener) {
  if (rank < 0 || rank >= static_cast<int>(program.rank_programs.size())) {
    throw Error("rank " + std::to_string(rank),
                "program has " + std::to_string(program.rank_programs.size()) + " ranks");
  }
  RunResult result;
  PhaseState forward{&result.forward_residual_norms, &result.forward_iterations};
  PhaseState adjoint{&result.adjoint_residual_norms, &result.adjoint_iterations};
  const bool tolerance_mode = program.tolerance > 0;

  const auto& sections = program.rank_programs[rank].sections;
  const std::vector<int> shards = tensor_group(program, rank);
  const std::int64_t shard_state_bytes = shards.size() > 1 ? state_bytes(micro_batch_model(program)) : 0;
  for (int s = 0; s < static_cast<int>(sections.size()); ++s) {
    const Section& section = sections[s];
    PhaseState* phase = section.phase == Phase::forward   ? &forward
                        : section.phase == Phase::adjoint ? &adjoint
                                                          : nullptr;
    if (section.iteration && phase && phase->converged) continue;
    for (int repetition = 0; repetition < section.repeat; ++repetition) {
      OpRef ref{rank, s, repetition, 0, nullptr};
      for (int i = 0; i < static_cast<int>(section.ops.size()); ++i) {
        const Op& op = section.ops[i];
        ref.index = i;
        ref.op = &op;
        if (listener) listener->before(ref);
        switch (op.kind) {
          case OpKind::send:
            comm.send(op, backend.bytes_of(op.a));
            break;
          case OpKind::recv:
            backend.assign_bytes(op.dst, comm.recv(op));
            break;
          case OpKind::allreduce:
            backend.write_register(
                op.dst, comm.allreduce_sum(op, collective_group(program, rank, op.kind), backend.read_register(op.dst)));
            break;
          case OpKind::grad_allreduce:
            backend.assign_gradient_bytes(
                op, comm.allreduce_gradients(op, collective_group(program, rank, op.kind), backend.gradient_bytes(op)));
            break;
          case OpKind::reduce_scatter:
            backend.assign_gradient_bytes(
                op, comm.reduce_scatter_gradients(op, collective_group(program, rank, op.kind), backend.gradient_bytes(op)));
            break;
          case OpKind::all_gather:
            backend.assign_parameter_bytes(
                op, comm.all_gather_parameters(op, collective_group(program, rank, op.kind), backend.parameter_bytes(op)));
            break;
          case OpKind::record_norm:
            if (phase) phase->norms->push_back(std::sqrt(backend.read_register(op.a)));
            break;
          default:
            comm.before_compute(op);
            backend.compute(op);
            if (const int count = tensor_allreduces(program, op); count > 0)
              comm.tensor_allreduces(op, shards, count, shard_state_bytes);
        }
        if (listener) listener->after(ref);
      }
      if (section.iteration && phase) {
        ++*phase->iterations;
        // All ranks hold the same allreduced norm, so all stop together.
        if (tolerance_mode && !phase->norms->empty() &&
            phase->norms->back() <= program.tolerance) {
          phase->converged = true;
          break;
        }
      }
    }
  }
  comm.finish();
  return result;
}

}  // namespace plait::schedule
