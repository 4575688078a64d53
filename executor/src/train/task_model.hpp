// The parts of a training model outside the MGRIT domain: on the first rank
// the embedding and the buffer blocks before the ODE, on the last rank the
// buffer blocks after it, the final LayerNorm and the head. Buffer blocks are
// ordinary pre-LN blocks (h = 1) computed exactly and serially (METHOD.md).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "../detail/transformer.hpp"
#include "plait/training/config.hpp"

namespace plait::executor::detail {

struct NamedParameter {
  std::string name;
  at::Tensor tensor;  // a leaf that requires grad
};

class TaskModel {
 public:
  // vocab: char-lm's vocabulary size (ignored for vit). `context` is the ODE
  // blocks' context (state shape, mask, dtype, device).
  TaskModel(const training::TrainConfig& config, int vocab, bool first_rank, bool last_rank,
            const ModelContext& context);

  // First rank: inputs (char-lm: token ids [batch, seq]; vit: images
  // [batch, 1, 28, 28] in [0, 1]) to the ODE's initial state, with a graph.
  at::Tensor front(const at::Tensor& inputs);
  struct Output {
    at::Tensor loss;       // mean cross-entropy, with a graph
    std::int64_t correct;  // vit: correct predictions; char-lm: correct next characters
    std::int64_t count;    // predictions made
  };
  // Last rank: ODE output [batch, seq, d_model] and targets to the loss.
  Output back(const at::Tensor& state, const at::Tensor& targets);

  std::vector<NamedParameter>& parameters() { return parameters_; }
  // Masks of the buffer blocks for this optimizer step (p = 0: none).
  void set_dropout(double p, std::uint64_t seed);

 private:
  at::Tensor& add(const std::string& name, at::Tensor tensor);
  at::Tensor buffer_blocks(at::Tensor x, int first, int count);

  const training::TrainConfig& config_;
  ModelContext context_;         // buffer blocks: seeds apart from the ODE blocks
  std::vector<NamedParameter> parameters_;
  std::vector<std::vector<at::Tensor>> before_, after_;  // buffer blocks' parameters
  std::map<int, DropoutMasks> masks_;  // per buffer block (network index); empty: no dropout
  at::Tensor token_embedding_, position_embedding_, patch_weight_, patch_bias_, class_token_;
  at::Tensor final_norm_weight_, final_norm_bias_, head_weight_, head_bias_;
};

}  // namespace plait::executor::detail
