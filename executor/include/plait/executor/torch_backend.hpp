// The torch backend of the one interpreter: states are [batch, seq, d_model]
// tensors, a step is one pre-LN transformer block as a forward-Euler step.
//
// Usable alone on one rank without MPI (the costmodels benchmarks drive its
// ops directly). The header includes neither torch nor MPI (pimpl).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plait/executor/world.hpp"
#include "plait/schedule/interpret.hpp"

namespace plait::executor {

namespace detail {
struct BackendAccess;  // the trainer's hooks (input, loss, dropout, parameters): executor-private
}

// Throws plait::Error when this executor cannot run `model` on `device`
// (kind is not "transformer", d_model not divisible by heads, unknown dtype,
// bf16 on cpu, cuda requested but not available, ...).
void check_runnable(const schedule::ModelDesc& model, const std::string& device);

// Sets this process up for timed compute: the intra-op thread count
// (at::set_num_threads), and glibc's malloc keeping the memory it is given
// back for the next allocation (no mmap per large block, no trimming).
// LibTorch on CPU allocates and frees every activation of every op; with
// glibc's defaults a block over its (moving) mmap threshold is mapped and
// unmapped each time and its pages fault in again: d128 steps ran in streaks
// 2.5x slow on one rank, and whole steps ~10 % slower on this VM.
void set_up_compute(int threads);

// True when this libtorch build sees a CUDA device.
bool cuda_available();

// A full GPT step's ends report their gradients beside the blocks' under
// these ids: the word embedding (the tied output layer's gradient included)
// and the position embedding; the final LayerNorm's weight and bias.
constexpr int embedding_gradient_id = -1;
constexpr int final_norm_gradient_id = -2;

class TorchBackend : public schedule::Backend {
 public:
  // Parameters of the rank's blocks (schedule::owned_blocks) are created now;
  // any other block a Program names is created on first use. Weights depend on
  // (model.seed, block) only, so every rank count builds the same network.
  // A tensor-parallel Program (model.tensor_parallel T > 1) needs the rank's
  // group (schedule::tensor_group): the rank holds its shard of every block,
  // its block steps sum their partial outputs over the group, and a state
  // travels as its 1 / T part, gathered over the group where it arrives.
  TorchBackend(const schedule::Program& program, int rank, const std::string& device = "cpu",
               std::unique_ptr<GroupSum> tensor_group = nullptr);
  ~TorchBackend() override;
  TorchBackend(const TorchBackend&) = delete;
  TorchBackend& operator=(const TorchBackend&) = delete;

  // schedule::Backend
  void compute(const schedule::Op& op) override;
  double read_register(const schedule::Buffer& reg) override;
  void write_register(const schedule::Buffer& reg, double value) override;
  std::span<const std::byte> bytes_of(const schedule::Buffer& buffer) override;
  void assign_bytes(const schedule::Buffer& buffer, std::span<const std::byte> bytes) override;
  // A grad_allreduce's gradients travel as fp32 elements whatever the dtype.
  std::vector<std::byte> gradient_bytes(const schedule::Op& op) override;
  void assign_gradient_bytes(const schedule::Op& op, std::span<const std::byte> bytes) override;
  // An all_gather's parameters, packed as the gradients are (fp32). With
  // Program::zero_stage >= 1 the update op changes only this replica's shard
  // of each gradient collective's buffer that the step ran (the rest keeps
  // its values until an all_gather brings the owner's).
  std::vector<std::byte> parameter_bytes(const schedule::Op& op) override;
  void assign_parameter_bytes(const schedule::Op& op, std::span<const std::byte> bytes) override;

  // Waits for queued device work (a no-op on cpu): call before reading a clock.
  void synchronize();

  // State access for tests and benchmarks (fp64 host copies).
  bool has_state(const schedule::Buffer& buffer) const;
  std::vector<double> state(const schedule::Buffer& buffer) const;
  void set_state(const schedule::Buffer& buffer, const std::vector<double>& values);
  // Fills `buffer` with seeded N(0, 1) values (benchmarks need valid inputs).
  void fill_random(const schedule::Buffer& buffer, std::uint64_t seed);
  std::int64_t state_elements() const;

  // Parameter gradients accumulated by step_adjoint ops with accumulate_grad,
  // flattened in parameter order; blocks that got none are absent. A
  // tensor-parallel shard gives its part in the whole block's layout (zeros
  // elsewhere; whole-block tensors on shard 0 only): the shards' add up.
  std::vector<int> gradient_blocks() const;
  std::vector<double> gradient(int block) const;
  void zero_gradients();
  // The update op's AdamW step size (default 0: a measured step runs the
  // optimizer in full and leaves the weights as they were, so every step and
  // the serial baseline see one network).
  void set_learning_rate(double learning_rate);
  // Flattened parameters of a block (creating them if needed): this shard's.
  std::vector<double> parameters(int block);

  // On (the default): a forward step the Program marks "keep" keeps its
  // autograd graph, and step_adjoint at the same state tensor reuses it
  // (backward only). Off: every step_adjoint recomputes its forward step,
  // which saves the activations' memory.
  void set_keep_step_graphs(bool keep);
  // Adjoint steps that expected a kept graph and had to recompute.
  std::int64_t graph_misses() const;

  // Value of J at the state the last `loss` op read; NaN before any.
  double last_loss() const;
  // Drops every state and register (parameters and gradients stay).
  void clear_states();

 private:
  friend struct detail::BackendAccess;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plait::executor
