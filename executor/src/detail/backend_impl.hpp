// The torch backend's state (TorchBackend::Impl): shared by its public face
// (torch_backend.cpp: messages, gradients, state access) and its ops
// (backend_ops.cpp: steps, adjoints, loss, update). Executor-private.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>

#include "detail/backend_access.hpp"
#include "detail/gpt_ends.hpp"
#include "detail/transformer.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/error.hpp"
#include "train/optimizer.hpp"

namespace plait::executor {

using schedule::Buffer;
using schedule::Op;
using schedule::OpKind;
using schedule::Space;

struct TorchBackend::Impl {
  // The autograd graph of a forward step from a state buffer, kept so that a
  // later step_adjoint at the same state tensor runs only the backward pass.
  struct StepGraph {
    at::Tensor input;   // the state tensor the step read (identity check)
    at::Tensor leaf;    // its detached copy that requires grad
    at::Tensor output;  // Phi(leaf), with the graph
  };
  using GraphKey = std::tuple<Buffer, int, int>;  // state buffer, block, span

  detail::ModelContext context;
  int rank;
  int layers;
  double h;
  bool on_cuda;
  int micro_batches;           // the batch's split (pipelines); states hold one micro-batch
  int replicas;                // data parallelism: the batch's split over replicas
  int replica;                 // this rank's replica: which samples it runs
  int zero_stage;              // sharded data parallelism (Program::zero_stage); 0: none
  at::Tensor input, target, zeros;
  std::map<int, at::Tensor> micro_losses;  // the last loss of each micro-batch
  std::map<int, std::vector<at::Tensor>> parameters;
  std::map<int, std::vector<at::Tensor>> gradients;
  // States are never modified in place once stored, so copy/input/zero can
  // share one tensor between buffers.
  std::map<Buffer, at::Tensor> states;
  std::map<Buffer, double> registers;
  at::Tensor last_loss;
  at::Tensor staging;  // host copy behind bytes_of on cuda
  bool keep_graphs = true;
  std::map<GraphKey, StepGraph> graphs;
  std::int64_t graph_misses = 0;
  detail::BackendAccess::LossFunction loss_function;  // set by the trainer; else J = 0.5 mean((u - target)^2)
  double dropout = 0;
  std::uint64_t dropout_seed = 0;
  std::map<int, detail::DropoutMasks> masks;  // per block, for dropout_seed
  std::unique_ptr<GroupSum> group;  // the tensor-parallel group; null for whole blocks
  int shard = 0;                    // this rank's place in it
  // A full GPT step (model.vocab > 0): token ids, the ends this rank holds, and
  // the update op's optimizer (AdamW at learning_rate: 0 unless set, so that
  // a measured step leaves the network as it was).
  at::Tensor tokens;
  std::unique_ptr<detail::GptEnds> ends;
  detail::Optimizer optimizer{training::OptimizerConfig{}};
  double learning_rate = 0;
  // ZeRO (zero_stage >= 1): the gradient collectives this step ran; the update
  // changes only this replica's shard of each one's packed buffer.
  std::vector<Op> sharded_sums;

  Impl(const schedule::Program& program, int rank, const std::string& device, std::unique_ptr<GroupSum> group);

  // States hold one micro-batch of one replica: the batch split this many ways.
  int split() const { return micro_batches * replicas; }

  std::vector<int64_t> state_shape() const {
    std::vector<int64_t> shape = context.state_shape();
    shape[0] /= split();
    return shape;
  }

  // This replica's micro-batch's rows of the whole batch's input or target
  // (replica k holds rows k/D .. (k+1)/D of the batch, in micro-batches).
  at::Tensor rows_of(const at::Tensor& whole, int micro) const {
    const int64_t rows = whole.size(0) / split();
    return whole.narrow(0, (int64_t{replica} * micro_batches + micro) * rows, rows);
  }

  std::string where(const Op& op) const {
    return "rank " + std::to_string(rank) + ", " + std::string(to_string(op.kind)) + " " +
           to_string(op.dst);
  }

  std::vector<at::Tensor>& block_parameters(int block);

  const at::Tensor& state(const Buffer& buffer, const Op* op = nullptr) const {
    auto found = states.find(buffer);
    if (found == states.end())
      throw Error(op ? where(*op) : "rank " + std::to_string(rank),
                  "buffer " + to_string(buffer) + " is read before it is written");
    return found->second;
  }

  void check_step(const Op& op);

  const detail::DropoutMasks* masks_of(int block);

  StepGraph record_step(const at::Tensor& input, const Op& op);

  // The Program says which forward steps keep their graph (only those whose
  // state the adjoint reads); set_keep_step_graphs(false) overrides it.
  void step(const Op& op);

  // Vector-Jacobian product of Phi at state c: on the graph its forward step
  // kept if c is still that tensor, else (and where the Program says
  // recompute) on a recomputed step, freed after use. A step_weight takes the
  // parameters' part only (autograd runs the block's backward again to reach
  // them: exact, not cheaper than the joint product on this backend).
  void step_adjoint(const Op& op);

  // J of the micro-batch (the whole batch's mean: each micro-batch's mean
  // counts 1 / (M D), and so does its gradient); this rank's last_loss is its
  // replica's part of the batch's.
  void loss(const Op& op);

  // The optimizer step over every parameter this rank holds that has a gradient.
  void update();

  // The ends' gradients travel with the grad_allreduce whose size says so
  // (the Program adds them to the rank's last one).
  bool carries_ends(const Op& op) const;

  // The parameter tensors a gradient collective or an all_gather packs, in
  // its order: blocks [op.block, op.block + op.span), then the ends' if it carries them.
  std::vector<at::Tensor> packed_parameters(const Op& op);

  void compute(const Op& op);
};


}  // namespace plait::executor
