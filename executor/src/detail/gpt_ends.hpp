// The ends of a full GPT training step (model.vocab > 0), as the schedule's
// `input` and `loss` ops run them: the token and position embeddings before
// the blocks; the final LayerNorm, the output layer and the cross-entropy
// after them. The output layer is the word embedding (tied, GPT-2 and
// Megatron's default); a rank holding the last block but not the first holds
// a copy of it. Under tensor parallelism the word embedding is split by
// vocabulary: shard r of T holds rows r V / T .. (r + 1) V / T, looks up only
// the tokens in them, and the cross-entropy is computed from the shards'
// partial sums (Megatron's vocabulary-parallel embedding and loss).
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "detail/transformer.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/executor/world.hpp"

namespace plait::executor::detail {

// Token ids [batch, seq + 1], seeded by model.seed: a sample's input is its
// first seq ids, its targets the last seq (the next token).
at::Tensor make_tokens(const ModelContext& context);

class GptEnds {
 public:
  // The parts a rank holding the first block (`first`) and / or the last
  // (`last`) has, shard `shard` of its group (null: whole). Seeded by
  // model.seed alone: N(0, 0.02^2) embeddings, LayerNorm 1 and 0.
  GptEnds(const ModelContext& context, bool first, bool last, int shard = 0, GroupSum* group = nullptr);

  bool holds_any() const { return word_.defined(); }

  // The input op: word[ids] + position, [rows, seq, d], for `tokens` [rows, seq + 1].
  at::Tensor embed(const at::Tensor& tokens) const;
  // The loss op: the mean cross-entropy over these rows' tokens times
  // `scale`, and its gradient at `output` [rows, seq, d]; the gradients of
  // the final LayerNorm and the output layer are added to this rank's.
  std::pair<at::Tensor, at::Tensor> loss(const at::Tensor& output, const at::Tensor& tokens, double scale);
  // The input op's backward: the embeddings' gradients from dJ/dx at the
  // network input of these rows, added to this rank's.
  void add_input_gradient(const at::Tensor& tokens, const at::Tensor& input_gradient);

  // This rank's parameters and their accumulated gradients (zeros before
  // any), in one order: word, position (first), norm weight and bias (last).
  std::vector<at::Tensor> parameters() const;
  std::vector<at::Tensor> gradients() const;
  void set_gradients(const std::vector<at::Tensor>& gradients);
  void zero_gradients();
  // The ids (embedding_gradient_id, final_norm_gradient_id) of what this rank holds.
  std::vector<int> gradient_ids() const;
  // A gradient id's tensors in the whole model's layout (zeros for what
  // this rank or shard does not hold; whole tensors on shard 0 only), so
  // that every rank's add up to the whole gradient.
  std::vector<at::Tensor> whole_gradient(int id) const;

 private:
  const ModelContext& context_;
  bool first_, last_;
  int shard_;
  GroupSum* group_;
  int64_t vocab_rows_;  // V / T
  at::Tensor word_, position_, norm_weight_, norm_bias_;
  at::Tensor word_grad_, position_grad_, norm_weight_grad_, norm_bias_grad_;
};

// The same ends on one rank, whole, under autograd: the serial baseline's.
at::Tensor embed_whole(const at::Tensor& word, const at::Tensor& position, const at::Tensor& tokens);
at::Tensor loss_whole(const at::Tensor& output, const at::Tensor& norm_weight, const at::Tensor& norm_bias,
                      const at::Tensor& word, const at::Tensor& tokens);

}  // namespace plait::executor::detail
