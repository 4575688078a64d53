// Tensor parallelism and the full training step's ends over any builder
// (build_model_parallel.cpp).
#pragma once

#include "plait/schedule/build.hpp"

namespace plait::schedule::detail {

// Whether spec's model asks for what model_parallel adds: tensor parallelism
// or a vocabulary (a full GPT training step).
bool needs_model_parallel(const BuildSpec& spec);

// build(spec with the plain block-stack model) expanded: every rank becomes
// model.tensor_parallel ranks running its ops on their shards (messages to the
// same shard of the peer, 1 / T of the state each as Megatron's scatter-gather
// sends; gradient sums of a shard's parameters); with a vocabulary, the
// embedding's and output layer's gradients join the first and last stage's
// gradient sums and every rank ends with its optimizer step (update).
Program model_parallel(const BuildSpec& spec, Program (*build)(const BuildSpec&));

}  // namespace plait::schedule::detail
