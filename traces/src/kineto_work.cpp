// A framework op's work from the shapes the profiler recorded (record_shapes):
// GEMMs by their dimensions, elementwise ops by their tensors' bytes.
#include <set>

#include <nlohmann/json.hpp>

#include "detail/kineto.hpp"

namespace plait::traces::detail {
namespace {

using nlohmann::json;

std::optional<std::string> plait_dtype(const std::string& type) {
  if (type == "float") return "fp32";
  if (type == "c10::Half" || type == "Half" || type == "half") return "fp16";
  if (type == "c10::BFloat16" || type == "BFloat16") return "bf16";
  return std::nullopt;
}

double element_bytes(const std::string& dtype) { return dtype == "fp32" ? 4 : 2; }

// The dims of input `index`, when it is a tensor of at most 4 dims with sane sizes.
std::optional<std::vector<double>> dims_of(const json& dims, std::size_t index) {
  if (!dims.is_array() || index >= dims.size() || !dims[index].is_array() || dims[index].size() > 4) return std::nullopt;
  std::vector<double> out;
  for (const json& d : dims[index]) {
    if (!d.is_number_integer() || d.get<std::int64_t>() <= 0 || d.get<std::int64_t>() > (std::int64_t{1} << 32)) {
      return std::nullopt;
    }
    out.push_back(static_cast<double>(d.get<std::int64_t>()));
  }
  return out.empty() ? std::nullopt : std::optional(out);
}

double numel(const std::vector<double>& dims) {
  double n = 1;
  for (double d : dims) n *= d;
  return n;
}

}  // namespace

std::optional<KernelWork> op_work(const std::string& name, const json& args) {
  const auto dims = args.find("Input Dims");
  const auto types = args.find("Input type");
  if (dims == args.end() || types == args.end() || !types->is_array() || types->empty() || !(*types)[0].is_string()) {
    return std::nullopt;
  }
  // addmm and baddbmm carry the added term first
  const std::size_t first = name == "aten::addmm" || name == "aten::baddbmm" ? 1 : 0;
  if (first >= types->size() || !(*types)[first].is_string()) return std::nullopt;
  const auto dtype = plait_dtype((*types)[first].get<std::string>());
  if (!dtype) return std::nullopt;
  KernelWork work;
  work.op = name;
  work.dtype = *dtype;
  const double size = element_bytes(*dtype);
  if (name == "aten::mm" || name == "aten::addmm" || name == "aten::bmm" || name == "aten::baddbmm") {
    const auto a = dims_of(*dims, first), b = dims_of(*dims, first + 1);
    const std::size_t rank = name.find("bmm") != std::string::npos ? 3 : 2;
    if (!a || !b || a->size() != rank || b->size() != rank || (*a)[rank - 1] != (*b)[rank - 2]) return std::nullopt;
    const double batch = rank == 3 ? (*a)[0] : 1, m = (*a)[rank - 2], k = (*a)[rank - 1], n = (*b)[rank - 1];
    work.flops = 2 * batch * m * k * n;
    work.bytes = batch * (m * k + k * n + m * n) * size;
    work.gemm_min_dim = static_cast<std::int64_t>(std::min({m, k, n}));
    return work;
  }
  static const std::set<std::string> elementwise = {
      "aten::add",  "aten::add_",  "aten::mul",   "aten::mul_",  "aten::sub",     "aten::sub_",  "aten::div",
      "aten::div_", "aten::relu",  "aten::relu_", "aten::gelu",  "aten::sigmoid", "aten::tanh",  "aten::neg",
      "aten::exp",  "aten::copy_", "aten::fill_", "aten::zero_", "aten::threshold_backward", "aten::gelu_backward"};
  if (!elementwise.count(name)) return std::nullopt;
  const auto out = dims_of(*dims, 0);
  if (!out) return std::nullopt;
  double traffic = numel(*out) * size;  // the result, written once
  for (std::size_t i = 0; i < dims->size(); ++i) {
    if (const auto in = dims_of(*dims, i)) traffic += numel(*in) * size;  // each tensor input read once
  }
  work.flops = numel(*out);
  work.bytes = traffic;
  return work;
}

}  // namespace plait::traces::detail
