// FLOPs and bytes of the executor's ops, part by part (see analytic.hpp).
//
// Notation: B batch, S sequence, d width, H heads, r MLP ratio, n = B*S tokens,
// e bytes per element. One block step of size s, as executor/src/transformer.cpp runs it:
//   y = u + s * Attn(LN1(u)),  dst = y + s * MLP(LN2(y)).
// GEMMs: QKV 6nd^2, output projection 2nd^2, MLP 4rnd^2 (multiply-add = 2 FLOPs);
// attention QK^T and AV 2*B*S^2*d each, computed in full with an additive mask
// (the causal mask does not halve the work in an eager implementation).
// Bytes assume no fusion: each kernel reads its inputs and writes its output once.
#include <algorithm>
#include <cmath>
#include <iterator>

#include "plait/costmodels/analytic.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

namespace keys = schedule::cost_keys;

schedule::Work OpWork::total() const {
  schedule::Work sum;
  for (const WorkPart& part : parts) sum.flops += part.flops, sum.bytes += part.bytes;
  return sum;
}

double dtype_bytes(std::string_view dtype) {
  if (dtype == "fp32") return 4;
  if (dtype == "bf16" || dtype == "fp16") return 2;
  throw Error("model.dtype", "expected fp32, bf16 or fp16, got \"" + std::string(dtype) + "\"");
}

namespace {

// T tensor-parallel ranks (a rank computes H / T heads and r d / T MLP
// columns), V the vocabulary (0: none), Q the ranks the sequence is split over
// outside attention and the MLP (T with sequence parallelism, else 1).
struct Shape {
  double B, S, d, H, r, e, n, T, V, Q;
};

Shape shape_of(const schedule::ModelDesc& model) {
  if (model.kind != "transformer") {
    throw Error("model.kind", "the analytic model prices transformer blocks, got \"" +
                                  model.kind + "\"");
  }
  if (model.d_model <= 0 || model.heads <= 0 || model.seq <= 0 || model.batch <= 0 ||
      model.mlp_ratio <= 0 || model.d_model % model.heads != 0) {
    throw Error("model", "sizes must be positive and d_model divisible by heads");
  }
  const double B = model.batch, S = model.seq, T = std::max(model.tensor_parallel, 1);
  return {B, S, double(model.d_model), double(model.heads), double(model.mlp_ratio),
          dtype_bytes(model.dtype), B * S, T, double(model.vocab), model.sequence_parallel ? T : 1};
}

// A GEMM [m x k] * [k x n]: reads both operands, writes the result.
WorkPart gemm(std::string name, double m, double k, double n, double e, double batches = 1) {
  return {std::move(name), 2 * m * k * n * batches, (m * k + k * n + m * n) * batches * e, std::min({m, k, n})};
}

// An elementwise kernel over `elements` reading `inputs` tensors, writing one.
WorkPart elementwise(std::string name, double elements, double flops_per_element,
                     double inputs, double e) {
  return {std::move(name), elements * flops_per_element, elements * (inputs + 1) * e};
}

// Tensor parallelism splits the heads and the MLP columns: every part but
// the LayerNorms and residuals works on 1 / T of its tensors.
// Sequence parallelism splits what tensor parallelism leaves whole (the
// LayerNorms, dropouts and residual adds) over the sequence: `local` elements.
struct BlockSizes {
  double nd, heads, scores, dh, hidden, local;  // state, heads x batch, attention scores, head width, MLP activations
};

BlockSizes sizes_of(const Shape& s) {
  const double heads = s.B * s.H / s.T;
  return {s.n * s.d, heads, heads * s.S * s.S, s.d / s.H, s.n * s.r * s.d / s.T, s.n * s.d / s.Q};
}

// Attention's core (scores, softmax, dropout, the weighted sum of values):
// what selective recomputation recomputes in the backward.
bool is_core_attention(const WorkPart& part) {
  for (const char* name : {"scores", "scale", "mask", "softmax", "attention.dropout", "attn.v"})
    if (part.name == name) return true;
  return false;
}

std::vector<WorkPart> forward_parts(const Shape& s) {
  const auto [nd, heads, scores, dh, hidden, local] = sizes_of(s);
  return {
      elementwise("ln1", local, 8, 1, s.e),
      gemm("qkv", s.n, s.d, 3 * s.d / s.T, s.e),
      // q, k, v are permuted views: matmul copies them contiguous.
      elementwise("qkv.contiguous", 3 * nd / s.T, 0, 1, s.e),
      gemm("scores", s.S, dh, s.S, s.e, heads),
      elementwise("scale", scores, 1, 1, s.e),
      elementwise("mask", scores, 1, 2, s.e),  // additive causal mask
      elementwise("softmax", scores, 5, 1, s.e),
      gemm("attn.v", s.S, s.S, dh, s.e, heads),
      elementwise("heads.merge", nd / s.T, 0, 1, s.e),  // transpose + reshape copies
      gemm("out.proj", s.n, s.d / s.T, s.d, s.e),
      elementwise("residual1", local, 2, 2, s.e),
      elementwise("ln2", local, 8, 1, s.e),
      gemm("mlp.up", s.n, s.d, s.r * s.d / s.T, s.e),
      elementwise("gelu", hidden, 14, 1, s.e),
      gemm("mlp.down", s.n, s.r * s.d / s.T, s.d, s.e),
      elementwise("residual2", local, 2, 2, s.e),
  };
}

// The block as Megatron runs it in a full GPT step (a vocabulary): the score
// scaling folded into the batched GEMM, scale-mask-softmax one fused kernel,
// dropout on the probabilities and, fused with the bias and the residual, on
// each branch (p = 0.1, a byte mask each), the MLP's bias fused with GELU.
std::vector<WorkPart> megatron_forward_parts(const Shape& s) {
  const auto [nd, heads, scores, dh, hidden, local] = sizes_of(s);
  return {
      elementwise("ln1", local, 8, 1, s.e),
      gemm("qkv", s.n, s.d, 3 * s.d / s.T, s.e),
      gemm("scores", s.S, dh, s.S, s.e, heads),  // scaled by the GEMM's alpha
      elementwise("softmax", scores, 7, 1, s.e),
      {"attention.dropout", 2 * scores, scores * (2 * s.e + 1)},
      gemm("attn.v", s.S, s.S, dh, s.e, heads),
      elementwise("heads.merge", nd / s.T, 0, 1, s.e),
      gemm("out.proj", s.n, s.d / s.T, s.d, s.e),
      {"bias.dropout.add1", 4 * local, local * (3 * s.e + 1)},
      elementwise("ln2", local, 8, 1, s.e),
      gemm("mlp.up", s.n, s.d, s.r * s.d / s.T, s.e),
      elementwise("bias.gelu", hidden, 15, 1, s.e),
      gemm("mlp.down", s.n, s.r * s.d / s.T, s.d, s.e),
      {"bias.dropout.add2", 4 * local, local * (3 * s.e + 1)},
  };
}

// Back-propagation of a forward part to its inputs: a GEMM becomes one GEMM of
// equal size (dX = dY W^T), an elementwise kernel reads its saved input and the
// incoming gradient (about twice the forward's traffic and FLOPs).
WorkPart input_gradient(const WorkPart& part) {
  const bool is_gemm = part.name == "qkv" || part.name == "scores" || part.name == "attn.v" ||
                       part.name == "out.proj" || part.name == "mlp.up" || part.name == "mlp.down";
  // scores and attn.v have two activation inputs: both gradients are needed.
  const double factor = (part.name == "scores" || part.name == "attn.v") ? 2 : 1;
  if (is_gemm) return {part.name + ".dx", part.flops * factor, part.bytes * factor, part.gemm_min_dim};
  return {part.name + ".dx", 2 * part.flops, 2 * part.bytes};
}

// Parameter gradients: dW = X^T dY of the weight GEMMs, plus accumulating the
// gradient into the parameter's .grad (read + write).
std::vector<WorkPart> parameter_gradient_parts(const Shape& s) {
  const double params = (4 + 2 * s.r) * s.d * s.d / s.T;
  return {
      gemm("qkv.dw", s.d, s.n, 3 * s.d / s.T, s.e),
      gemm("out.proj.dw", s.d / s.T, s.n, s.d, s.e),
      gemm("mlp.up.dw", s.d, s.n, s.r * s.d / s.T, s.e),
      gemm("mlp.down.dw", s.r * s.d / s.T, s.n, s.d, s.e),
      elementwise("bias+ln.grads", s.n * (5 + s.r / s.T) * s.d, 1, 0, s.e),
      elementwise("grad.accumulate", params, 1, 2, s.e),
  };
}

// A full step's ends (vocabulary V, 1 / T of it on each rank). The embedding:
// the word rows' lookup plus the position embedding, and in the backward the
// gradient's scatter-add into both tables. The head: final LayerNorm, logits
// over V / T, the vocabulary-parallel cross-entropy (in fp32, as Megatron) and
// their backward: the logits' input and weight gradients, the LayerNorm's.
OpWork embedding_work(const Shape& s) {
  const double nd = s.n * s.d, table = s.V / s.T * s.d;
  // The word table's gradient is dense: zeroed, the rows scattered in, then
  // accumulated into the parameter's gradient, every micro-batch.
  return {{elementwise("embed.lookup", nd, 0, 1, s.e), elementwise("embed.position", nd, 1, 2, s.e),
           {"embed.grad.zero", 0, table * s.e}, elementwise("embed.grad", nd, 1, 2, s.e),
           elementwise("embed.grad.accumulate", table, 1, 2, s.e), elementwise("embed.position.grad", nd, 1, 2, s.e)}};
}

OpWork head_work(const Shape& s) {
  const double nd = s.n * s.d, logits = s.n * s.V / s.T;
  return {{elementwise("head.ln", nd, 8, 1, s.e), gemm("logits", s.n, s.d, s.V / s.T, s.e),
           // Megatron's vocabulary-parallel cross-entropy on the logits cast to fp32:
           // max, subtract, exp, sum and divide in place, each a pass of its own; the
           // backward scales the saved softmax in place and casts it back.
           {"logits.float", 0, logits * (s.e + 4)}, {"cross_entropy.max", logits, logits * 4},
           elementwise("cross_entropy.sub", logits, 1, 1, 4), elementwise("cross_entropy.exp", logits, 1, 1, 4),
           {"cross_entropy.sum", logits, logits * 4}, elementwise("cross_entropy.div", logits, 1, 1, 4),
           elementwise("cross_entropy.dx", logits, 1, 1, 4), {"cross_entropy.dx.half", 0, logits * (4 + s.e)},
           gemm("logits.dx", s.n, s.V / s.T, s.d, s.e), gemm("logits.dw", s.d, s.n, s.V / s.T, s.e),
           elementwise("logits.grad.accumulate", s.d * s.V / s.T, 1, 2, s.e),
           elementwise("head.ln.dx", nd, 16, 2, s.e)}};
}

// Fused Adam on one parameter, fp32 master weights and moments: reads the
// gradient, master weight and two moments, writes those three and the
// model-dtype weight.
OpWork adam_work(const Shape& s) { return {{{"adam", 14, 4 * 4 + 2 * s.e + 4 * 3}}}; }

}  // namespace

std::map<std::string, OpWork> transformer_work(const schedule::ModelDesc& model) {
  const Shape s = shape_of(model);
  const double state = s.n * s.d;
  std::map<std::string, OpWork> table;

  OpWork forward{s.V > 0 ? megatron_forward_parts(s) : forward_parts(s)};
  OpWork adjoint;
  for (const WorkPart& part : forward.parts) adjoint.parts.push_back(input_gradient(part));
  OpWork gradient = adjoint;
  OpWork weight_gradient{parameter_gradient_parts(s)};
  for (const WorkPart& part : weight_gradient.parts) gradient.parts.push_back(part);
  table[std::string(keys::block_weight_gradient)] = std::move(weight_gradient);
  const auto after = [](const std::vector<WorkPart>& first, const OpWork& backward) {
    OpWork out{first};
    out.parts.insert(out.parts.end(), backward.parts.begin(), backward.parts.end());
    return out;
  };
  table[std::string(keys::block_adjoint_recompute)] = after(forward.parts, adjoint);
  table[std::string(keys::block_gradient_recompute)] = after(forward.parts, gradient);
  // Selective recomputation: a backward on a kept graph first recomputes attention's core.
  if (model.selective_recompute) {
    std::vector<WorkPart> core;
    std::copy_if(forward.parts.begin(), forward.parts.end(), std::back_inserter(core), is_core_attention);
    adjoint = after(core, adjoint);
    gradient = after(core, gradient);
  }
  table[std::string(keys::block_forward_keep)] = forward;  // the same work; a profile prices the recording
  table[std::string(keys::block_forward)] = std::move(forward);
  table[std::string(keys::block_adjoint)] = std::move(adjoint);
  table[std::string(keys::block_gradient)] = std::move(gradient);
  // zero, copy and input alias an existing tensor (ops never write in place):
  // no memory traffic, only the per-op overhead a profile fits.
  table[std::string(keys::vec_zero)] = {};
  table[std::string(keys::vec_copy)] = {};
  table[std::string(keys::input)] = s.V > 0 ? embedding_work(s) : OpWork{};
  table[std::string(keys::update)] = adam_work(s);
  table[std::string(keys::vec_sub)] = {{elementwise("sub", state, 1, 2, s.e)}};
  // ||a||^2 in double: convert (e -> 8 bytes), square, sum.
  table[std::string(keys::vec_norm)] = {{{"to.double", 0, state * (s.e + 8)},
                                         elementwise("square", state, 1, 1, 8),
                                         {"sum", state, state * 8}}};
  if (s.V > 0) {
    table[std::string(keys::loss)] = head_work(s);
    return table;
  }
  // Mean-squared loss 0.5 * mean((u - t)^2) and its gradient (u - t) / N.
  table[std::string(keys::loss)] = {{elementwise("loss.diff", state, 1, 2, s.e),
                                     elementwise("loss.square", state, 1, 1, s.e),
                                     {"loss.mean", state, state * s.e},
                                     elementwise("grad.diff", state, 1, 2, s.e),
                                     elementwise("grad.scale", state, 1, 1, s.e)}};
  return table;
}

double peak_flops(const DeviceSheet& device, std::string_view dtype) {
  if ((dtype == "bf16" || dtype == "fp16") && device.peak_flops_bf16 > 0) {
    return device.peak_flops_bf16;
  }
  return device.peak_flops_fp32;
}

double roofline_seconds(const WorkPart& part, const DeviceSheet& device, std::string_view dtype) {
  const double saturation =
      part.gemm_min_dim > 0 && device.gemm_half_dim > 0 ? part.gemm_min_dim / (part.gemm_min_dim + device.gemm_half_dim) : 1;
  const double flops = part.flops / saturation, bytes = part.bytes / device.memory_efficiency;
  return roofline_seconds(schedule::Work{flops, bytes}, device, dtype);
}

double roofline_seconds(const OpWork& work, const DeviceSheet& device, std::string_view dtype) {
  double seconds = 0;
  for (const WorkPart& part : work.parts) seconds += roofline_seconds(part, device, dtype);
  return seconds;
}

double device_seconds(const OpWork& work, const DeviceSheet& device, std::string_view dtype) {
  // A two-stage pipeline: the host launches kernel i at i x launch; it runs
  // once launched and once kernel i - 1 is done.
  double done = 0;
  for (std::size_t i = 0; i < work.parts.size(); ++i)
    done = std::max(done, double(i + 1) * device.kernel_overhead_s) +
           roofline_seconds(work.parts[i], device, dtype) / device.efficiency;
  return done;
}

double updated_parameters(const schedule::Op& op, const schedule::ModelDesc& model) {
  return double(op.bytes) / dtype_bytes(model.dtype);
}

double roofline_seconds(const schedule::Work& work, const DeviceSheet& device,
                        std::string_view dtype) {
  const double peak = peak_flops(device, dtype);
  if (!(peak > 0) || !(device.memory_bandwidth > 0)) {
    throw Error("device sheet \"" + device.name + "\"",
                "peak FLOP/s and memory bandwidth must be positive");
  }
  return std::max(work.flops / peak, work.bytes / device.memory_bandwidth);
}

}  // namespace plait::costmodels
