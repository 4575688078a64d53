#include "detail/gpt_ends.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include "detail/tensor_parallel.hpp"

namespace plait::executor::detail {
namespace {

constexpr std::uint64_t token_stream = first_model_stream + 2;
constexpr std::uint64_t word_stream = first_model_stream + 3;
constexpr std::uint64_t position_stream = first_model_stream + 4;
constexpr double embedding_std = 0.02;

at::Tensor input_ids(const at::Tensor& tokens) { return tokens.narrow(1, 0, tokens.size(1) - 1); }
at::Tensor target_ids(const at::Tensor& tokens) { return tokens.narrow(1, 1, tokens.size(1) - 1); }

// Ids relative to the rows [first, first + rows) of the vocabulary a shard
// holds, clamped into them, and whether each id is one of them.
std::pair<at::Tensor, at::Tensor> local_ids(const at::Tensor& ids, int64_t first, int64_t rows) {
  const at::Tensor local = ids - first;
  const at::Tensor inside = local.ge(0).logical_and(local.lt(rows));
  return {local.clamp(0, rows - 1), inside};
}

// word[ids] of the shard's rows, zeros for the others; summed over the group.
at::Tensor lookup(const at::Tensor& word, const at::Tensor& ids, int64_t first, GroupSum* group) {
  if (!group) return at::embedding(word, ids);
  const auto [local, inside] = local_ids(ids, first, word.size(0));
  const at::Tensor partial = at::embedding(word, local) * inside.unsqueeze(-1).to(word.scalar_type());
  return sum_over_group(partial, *group);
}

// Mean cross-entropy of the logits of LN(output) against the word
// embedding's rows: with a group, softmax's max, normaliser and the target's
// logit are the shards' sums (the max gathered by a sum of one-hot parts).
at::Tensor cross_entropy(const at::Tensor& output, const at::Tensor& norm_weight, const at::Tensor& norm_bias,
                         const at::Tensor& word, const at::Tensor& targets, int64_t first, int shard,
                         GroupSum* group) {
  at::Tensor normed = at::layer_norm(output, {output.size(-1)}, norm_weight, norm_bias, 1e-5);
  if (group) normed = enter_group(normed, *group);
  const at::Tensor logits = at::linear(normed, word);  // [rows, seq, V / T]
  at::Tensor max = logits.detach().amax(-1);            // constant: the loss does not depend on it
  if (group) {
    at::Tensor parts = at::zeros({group->size(), max.size(0), max.size(1)}, max.options());
    parts[shard].copy_(max);
    max = summed_over_group(parts, *group).amax(0);
  }
  const at::Tensor shifted = logits - max.unsqueeze(-1);
  at::Tensor normaliser = shifted.exp().sum(-1);
  const auto [local, inside] = local_ids(targets, first, word.size(0));
  at::Tensor target_logit = shifted.gather(-1, local.unsqueeze(-1)).squeeze(-1);
  if (group) {
    normaliser = sum_over_group(normaliser, *group);
    target_logit = sum_over_group(target_logit * inside.to(target_logit.scalar_type()), *group);
  }
  return (normaliser.log() - target_logit).mean();
}

}  // namespace

at::Tensor make_tokens(const ModelContext& context) {
  const auto& m = context.model;
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(m.seed, token_stream));
  return at::randint(m.vocab, {m.batch, m.seq + 1}, generator, at::TensorOptions().dtype(at::kLong))
      .to(context.options.device());
}

GptEnds::GptEnds(const ModelContext& context, bool first, bool last, int shard, GroupSum* group)
    : context_(context), first_(first), last_(last), shard_(shard), group_(group) {
  const auto& m = context.model;
  vocab_rows_ = m.vocab / (group ? group->size() : 1);
  at::NoGradGuard no_grad;
  if (first || last)
    word_ = seeded_normal(m.seed, word_stream, {m.vocab, m.d_model}, embedding_std, context.options)
                .narrow(0, shard * vocab_rows_, vocab_rows_)
                .clone();
  if (first) position_ = seeded_normal(m.seed, position_stream, {m.seq, m.d_model}, embedding_std, context.options);
  if (last) {
    norm_weight_ = at::ones({m.d_model}, context.options);
    norm_bias_ = at::zeros({m.d_model}, context.options);
  }
  for (const at::Tensor& p : parameters()) p.requires_grad_(true);
  zero_gradients();
}

at::Tensor GptEnds::embed(const at::Tensor& tokens) const {
  at::NoGradGuard no_grad;
  return lookup(word_, input_ids(tokens), shard_ * vocab_rows_, group_) + position_;
}

std::pair<at::Tensor, at::Tensor> GptEnds::loss(const at::Tensor& output, const at::Tensor& tokens, double scale) {
  at::AutoGradMode enable_grad(true);
  const at::Tensor leaf = output.detach().requires_grad_(true);
  const at::Tensor loss = cross_entropy(leaf, norm_weight_, norm_bias_, word_, target_ids(tokens),
                                        shard_ * vocab_rows_, shard_, group_) * scale;
  const auto grads = torch::autograd::grad({loss}, {leaf, norm_weight_, norm_bias_, word_});
  at::NoGradGuard no_grad;
  norm_weight_grad_.add_(grads[1]);
  norm_bias_grad_.add_(grads[2]);
  word_grad_.add_(grads[3]);
  return {loss.detach(), grads[0]};
}

void GptEnds::add_input_gradient(const at::Tensor& tokens, const at::Tensor& input_gradient) {
  at::NoGradGuard no_grad;
  const int64_t d = input_gradient.size(-1);
  const auto [local, inside] = local_ids(input_ids(tokens).reshape({-1}), shard_ * vocab_rows_, vocab_rows_);
  const at::Tensor rows = input_gradient.reshape({-1, d});
  word_grad_.index_add_(0, local.masked_select(inside), rows.index({inside}));
  position_grad_.add_(input_gradient.sum(0));
}

std::vector<at::Tensor> GptEnds::parameters() const {
  std::vector<at::Tensor> all;
  for (const at::Tensor* p : {&word_, &position_, &norm_weight_, &norm_bias_})
    if (p->defined()) all.push_back(*p);
  return all;
}

std::vector<at::Tensor> GptEnds::gradients() const {
  std::vector<at::Tensor> all;
  for (const at::Tensor* g : {&word_grad_, &position_grad_, &norm_weight_grad_, &norm_bias_grad_})
    if (g->defined()) all.push_back(*g);
  return all;
}

void GptEnds::set_gradients(const std::vector<at::Tensor>& gradients) {
  std::size_t next = 0;
  for (at::Tensor* g : {&word_grad_, &position_grad_, &norm_weight_grad_, &norm_bias_grad_})
    if (g->defined()) g->copy_(gradients.at(next++));
}

void GptEnds::zero_gradients() {
  at::NoGradGuard no_grad;
  const std::vector<std::pair<const at::Tensor*, at::Tensor*>> pairs{
      {&word_, &word_grad_}, {&position_, &position_grad_}, {&norm_weight_, &norm_weight_grad_}, {&norm_bias_, &norm_bias_grad_}};
  for (const auto& [parameter, gradient] : pairs)
    if (parameter->defined()) *gradient = at::zeros_like(*parameter);
}

std::vector<int> GptEnds::gradient_ids() const {
  std::vector<int> ids;
  if (word_.defined()) ids.push_back(embedding_gradient_id);
  if (norm_weight_.defined()) ids.push_back(final_norm_gradient_id);
  return ids;
}

std::vector<at::Tensor> GptEnds::whole_gradient(int id) const {
  at::NoGradGuard no_grad;
  const auto& m = context_.model;
  const bool whole_tensors = shard_ == 0;  // the tensors every shard holds whole count once
  const auto or_zeros = [&](const at::Tensor& gradient, at::IntArrayRef shape) {
    return gradient.defined() && whole_tensors ? gradient.clone() : at::zeros(shape, context_.options);
  };
  if (id == final_norm_gradient_id)
    return {or_zeros(norm_weight_grad_, {m.d_model}), or_zeros(norm_bias_grad_, {m.d_model})};
  at::Tensor word = at::zeros({m.vocab, m.d_model}, context_.options);
  if (word_grad_.defined()) word.narrow(0, shard_ * vocab_rows_, vocab_rows_).copy_(word_grad_);
  return {word, or_zeros(position_grad_, {m.seq, m.d_model})};
}

at::Tensor embed_whole(const at::Tensor& word, const at::Tensor& position, const at::Tensor& tokens) {
  return lookup(word, input_ids(tokens), 0, nullptr) + position;
}

at::Tensor loss_whole(const at::Tensor& output, const at::Tensor& norm_weight, const at::Tensor& norm_bias,
                      const at::Tensor& word, const at::Tensor& tokens) {
  return cross_entropy(output, norm_weight, norm_bias, word, target_ids(tokens), 0, 0, nullptr);
}

}  // namespace plait::executor::detail
