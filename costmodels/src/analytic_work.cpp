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

struct Shape {
  double B, S, d, H, r, e, n;
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
  const double B = model.batch, S = model.seq;
  return {B, S, double(model.d_model), double(model.heads), double(model.mlp_ratio),
          dtype_bytes(model.dtype), B * S};
}

// A GEMM [m x k] * [k x n]: reads both operands, writes the result.
WorkPart gemm(std::string name, double m, double k, double n, double e, double batches = 1) {
  return {std::move(name), 2 * m * k * n * batches, (m * k + k * n + m * n) * batches * e};
}

// An elementwise kernel over `elements` reading `inputs` tensors, writing one.
WorkPart elementwise(std::string name, double elements, double flops_per_element,
                     double inputs, double e) {
  return {std::move(name), elements * flops_per_element, elements * (inputs + 1) * e};
}

std::vector<WorkPart> forward_parts(const Shape& s) {
  const double nd = s.n * s.d, scores = s.B * s.H * s.S * s.S, dh = s.d / s.H;
  const double hidden = s.n * s.r * s.d;
  return {
      elementwise("ln1", nd, 8, 1, s.e),
      gemm("qkv", s.n, s.d, 3 * s.d, s.e),
      // q, k, v are permuted views: matmul copies them contiguous.
      elementwise("qkv.contiguous", 3 * nd, 0, 1, s.e),
      gemm("scores", s.S, dh, s.S, s.e, s.B * s.H),
      elementwise("scale", scores, 1, 1, s.e),
      elementwise("mask", scores, 1, 2, s.e),  // additive causal mask
      elementwise("softmax", scores, 5, 1, s.e),
      gemm("attn.v", s.S, s.S, dh, s.e, s.B * s.H),
      elementwise("heads.merge", nd, 0, 1, s.e),  // transpose + reshape copies
      gemm("out.proj", s.n, s.d, s.d, s.e),
      elementwise("residual1", nd, 2, 2, s.e),
      elementwise("ln2", nd, 8, 1, s.e),
      gemm("mlp.up", s.n, s.d, s.r * s.d, s.e),
      elementwise("gelu", hidden, 14, 1, s.e),
      gemm("mlp.down", s.n, s.r * s.d, s.d, s.e),
      elementwise("residual2", nd, 2, 2, s.e),
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
  if (is_gemm) return {part.name + ".dx", part.flops * factor, part.bytes * factor};
  return {part.name + ".dx", 2 * part.flops, 2 * part.bytes};
}

// Parameter gradients: dW = X^T dY of the weight GEMMs, plus accumulating the
// gradient into the parameter's .grad (read + write).
std::vector<WorkPart> parameter_gradient_parts(const Shape& s) {
  const double params = (4 + 2 * s.r) * s.d * s.d;
  return {
      gemm("qkv.dw", s.d, s.n, 3 * s.d, s.e),
      gemm("out.proj.dw", s.d, s.n, s.d, s.e),
      gemm("mlp.up.dw", s.d, s.n, s.r * s.d, s.e),
      gemm("mlp.down.dw", s.r * s.d, s.n, s.d, s.e),
      elementwise("bias+ln.grads", s.n * (5 + s.r) * s.d, 1, 0, s.e),
      elementwise("grad.accumulate", params, 1, 2, s.e),
  };
}

}  // namespace

std::map<std::string, OpWork> transformer_work(const schedule::ModelDesc& model) {
  const Shape s = shape_of(model);
  const double state = s.n * s.d;
  std::map<std::string, OpWork> table;

  OpWork forward{forward_parts(s)};
  OpWork adjoint;
  for (const WorkPart& part : forward.parts) adjoint.parts.push_back(input_gradient(part));
  OpWork gradient = adjoint;
  OpWork weight_gradient{parameter_gradient_parts(s)};
  for (const WorkPart& part : weight_gradient.parts) gradient.parts.push_back(part);
  table[std::string(keys::block_weight_gradient)] = std::move(weight_gradient);
  const auto recomputing = [&forward](const OpWork& backward) {
    OpWork out = forward;
    out.parts.insert(out.parts.end(), backward.parts.begin(), backward.parts.end());
    return out;
  };

  table[std::string(keys::block_adjoint_recompute)] = recomputing(adjoint);
  table[std::string(keys::block_gradient_recompute)] = recomputing(gradient);
  table[std::string(keys::block_forward_keep)] = forward;  // the same work; a profile prices the recording
  table[std::string(keys::block_forward)] = std::move(forward);
  table[std::string(keys::block_adjoint)] = std::move(adjoint);
  table[std::string(keys::block_gradient)] = std::move(gradient);
  // zero, copy and input alias an existing tensor (ops never write in place):
  // no memory traffic, only the per-op overhead a profile fits.
  table[std::string(keys::vec_zero)] = {};
  table[std::string(keys::vec_copy)] = {};
  table[std::string(keys::input)] = {};
  table[std::string(keys::vec_sub)] = {{elementwise("sub", state, 1, 2, s.e)}};
  // ||a||^2 in double: convert (e -> 8 bytes), square, sum.
  table[std::string(keys::vec_norm)] = {{{"to.double", 0, state * (s.e + 8)},
                                         elementwise("square", state, 1, 1, 8),
                                         {"sum", state, state * 8}}};
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

double roofline_seconds(const OpWork& work, const DeviceSheet& device, std::string_view dtype) {
  double seconds = 0;
  for (const WorkPart& part : work.parts) {
    seconds += roofline_seconds(schedule::Work{part.flops, part.bytes}, device, dtype);
  }
  return seconds;
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
