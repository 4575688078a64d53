// The analytic cost model: FLOPs and bytes of every op from the model shape,
// priced by a roofline on a device sheet, with an efficiency (and a fixed
// per-op overhead) fitted from a measured profile.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/program.hpp"

namespace plait::costmodels {

// One kernel-like part of an op (a GEMM, the softmax, a LayerNorm, ...): the
// roofline prices parts separately, since eager LibTorch runs them one by one.
struct WorkPart {
  std::string name;
  double flops = 0;
  double bytes = 0;  // memory traffic: every tensor read and written once
  double gemm_min_dim = 0;  // a GEMM's smallest dimension (0: not a GEMM)
};

struct OpWork {
  std::vector<WorkPart> parts;
  schedule::Work total() const;
};

// Work per cost key of a transformer block of `model` (kind "transformer") as
// the executor runs it: pre-LN attention + MLP block; block.adj back-propagates
// to the state only, block.adj_grad to the state and the parameters, both on
// the graph their forward step kept; the *_recompute keys run that forward
// step first (no kept graph at that state: coarse levels, C-points). On one of
// model.tensor_parallel ranks: its share of the heads and MLP columns. With a
// vocabulary, input is the embedding (lookup and gradient), loss the final
// LayerNorm, output layer and cross-entropy, forward and backward; update
// is the work of one parameter's Adam step (update ops scale it).
// Throws plait::Error for other model kinds or bad sizes.
std::map<std::string, OpWork> transformer_work(const schedule::ModelDesc& model);

// Bytes of one element of `dtype` (fp32 4, bf16/fp16 2); plait::Error otherwise.
double dtype_bytes(std::string_view dtype);

// Peak FLOP/s of `device` for `dtype` (bf16/fp16 fall back to fp32 where unknown).
double peak_flops(const DeviceSheet& device, std::string_view dtype);

// Sum over parts of max(flops / peak, bytes / bandwidth), at full efficiency
// (but for the sheet's GEMM saturation and memory efficiency).
double roofline_seconds(const OpWork& work, const DeviceSheet& device, std::string_view dtype);
double roofline_seconds(const WorkPart& part, const DeviceSheet& device, std::string_view dtype);
// What the device takes to run the parts in order: kernel i (a part) starts
// once the host has launched it (kernel_overhead_s each, one after another)
// and kernel i - 1 has finished, and runs roofline / efficiency. With no
// launch cost: the roofline sum / efficiency.
double device_seconds(const OpWork& work, const DeviceSheet& device, std::string_view dtype);
// Parameters an update op updates (its bytes at the model's dtype).
double updated_parameters(const schedule::Op& op, const schedule::ModelDesc& model);
double roofline_seconds(const schedule::Work& work, const DeviceSheet& device,
                        std::string_view dtype);

// Fitted time of one cost key: overhead_s + roofline / efficiency; a co-running
// rank on the same machine multiplies it by contention_factor.
struct KeyFit {
  double efficiency = 1.0;
  double overhead_s = 0;
  double contention_factor = 1.0;
  double seconds(double roofline_s) const { return overhead_s + roofline_s / efficiency; }
};

struct RooflineSample {
  double roofline_s = 0;  // at full efficiency
  double measured_s = 0;
};

// Least squares on relative error; overhead >= 0, 0 < efficiency.
// One sample gives a fit through the origin; ops without work (roofline 0, e.g.
// aliasing copies) get their mean time as overhead. Throws plait::Error on no samples.
KeyFit fit_key(std::span<const RooflineSample> samples);

}  // namespace plait::costmodels
