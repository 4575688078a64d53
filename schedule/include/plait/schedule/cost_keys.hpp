// Cost keys: the names under which cost models price ops. Defined here once.
#pragma once

#include <string_view>

namespace plait::schedule::cost_keys {

inline constexpr std::string_view block_forward = "block.fwd";
// A forward step that keeps its autograd graph for the adjoint: it records and
// saves activations, ~1.45x a plain step on this VM's CPU (d64).
inline constexpr std::string_view block_forward_keep = "block.fwd_keep";
inline constexpr std::string_view block_adjoint = "block.adj";        // vjp w.r.t. the state
inline constexpr std::string_view block_gradient = "block.adj_grad";  // vjp w.r.t. state and parameters
// A split backward's second half: the vjp w.r.t. the parameters only.
inline constexpr std::string_view block_weight_gradient = "block.adj_weight";
// The same, with the forward step recomputed first (no kept graph at that state).
inline constexpr std::string_view block_adjoint_recompute = "block.adj_recompute";
inline constexpr std::string_view block_gradient_recompute = "block.adj_grad_recompute";
inline constexpr std::string_view vec_zero = "vec.zero";
inline constexpr std::string_view vec_copy = "vec.copy";
inline constexpr std::string_view vec_sub = "vec.sub";
inline constexpr std::string_view vec_norm = "vec.norm";
inline constexpr std::string_view input = "input";
inline constexpr std::string_view loss = "loss";
inline constexpr std::string_view send = "comm.send";
inline constexpr std::string_view recv = "comm.recv";
inline constexpr std::string_view allreduce = "comm.allreduce";
inline constexpr std::string_view grad_allreduce = "comm.grad_allreduce";  // data parallelism's gradient sum
// Sharded data parallelism: gradients reduce-scattered, parameters all-gathered over the replicas.
inline constexpr std::string_view reduce_scatter = "comm.reduce_scatter";
inline constexpr std::string_view all_gather = "comm.all_gather";
inline constexpr std::string_view record = "record";
// The optimizer step; cost models price it per parameter updated.
inline constexpr std::string_view update = "update";

}  // namespace plait::schedule::cost_keys
