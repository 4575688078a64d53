#include "plait/executor/torch_backend.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "detail/backend_impl.hpp"
#include "detail/tensor_parallel.hpp"

namespace plait::executor {

bool cuda_available() { return torch::cuda::is_available(); }

void set_up_compute(int threads) {
  if (threads < 1) throw Error("--threads", "must be at least 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest; setting it also stops it moving
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

void check_runnable(const schedule::ModelDesc& model, const std::string& device) {
  const std::string where = "model";
  if (model.kind != "transformer")
    throw Error(where, "the executor runs kind \"transformer\", not \"" + model.kind + "\"");
  if (model.d_model < 1 || model.heads < 1 || model.seq < 1 || model.batch < 1 || model.mlp_ratio < 1)
    throw Error(where, "d_model, heads, seq, batch and mlp_ratio must be positive");
  if (model.d_model % model.heads != 0)
    throw Error(where, "d_model " + std::to_string(model.d_model) + " is not divisible by heads " +
                           std::to_string(model.heads));
  if (!(model.tstop > 0) || !std::isfinite(model.tstop))
    throw Error(where, "tstop must be a positive number");
  if (model.buffer_blocks > 0)
    throw Error(where + ".buffer_blocks", "the executor does not run buffer blocks (TorchBraid's open and close "
                                          "layers); the simulator prices them");
  detail::scalar_type_of(model.dtype);
  if (detail::is_cuda(device) && !cuda_available())
    throw Error("--device " + device, "this libtorch sees no CUDA device");
  const at::Device chosen = detail::device_of(device);
  if (chosen.is_cuda() && chosen.index() >= int(torch::cuda::device_count()))
    throw Error("--device " + device, "there are only " + std::to_string(torch::cuda::device_count()) + " CUDA devices");
  if ((model.dtype == "bf16" || model.dtype == "fp16") && !chosen.is_cuda())
    throw Error(where, model.dtype + " runs on --device cuda only");
}


TorchBackend::TorchBackend(const schedule::Program& program, int rank, const std::string& device,
                           std::unique_ptr<GroupSum> tensor_group) {
  check_runnable(program.model, device);
  impl_ = std::make_unique<Impl>(program, rank, device, std::move(tensor_group));
}

TorchBackend::~TorchBackend() = default;

void TorchBackend::compute(const Op& op) { impl_->compute(op); }

double TorchBackend::read_register(const Buffer& reg) {
  auto found = impl_->registers.find(reg);
  return found == impl_->registers.end() ? 0.0 : found->second;
}

void TorchBackend::write_register(const Buffer& reg, double value) { impl_->registers[reg] = value; }

// A tensor-parallel shard sends its 1 / T of the state (Megatron's scatter);
// assign_bytes gathers the parts over the group.
std::span<const std::byte> TorchBackend::bytes_of(const Buffer& buffer) {
  at::Tensor tensor = impl_->state(buffer);
  if (const auto& group = impl_->group) tensor = tensor.reshape({group->size(), -1})[impl_->shard];
  if (!tensor.is_contiguous() || tensor.device().is_cuda()) tensor = tensor.to(at::kCPU).contiguous();
  impl_->staging = tensor;  // keeps the bytes alive until the next bytes_of
  return {static_cast<const std::byte*>(impl_->staging.data_ptr()), impl_->staging.nbytes()};
}

void TorchBackend::assign_bytes(const Buffer& buffer, std::span<const std::byte> bytes) {
  const auto& options = impl_->context.options;
  const auto& group = impl_->group;
  at::Tensor host = at::zeros(impl_->state_shape(), options.device(at::kCPU));
  at::Tensor part = group ? host.view({group->size(), -1})[impl_->shard] : host;
  if (bytes.size() != part.nbytes())
    throw Error("rank " + std::to_string(impl_->rank) + ", recv " + to_string(buffer),
                "message has " + std::to_string(bytes.size()) + " bytes, a state" + (group ? "'s part" : "") +
                    " has " + std::to_string(part.nbytes()));
  std::memcpy(part.data_ptr(), bytes.data(), bytes.size());
  // The other parts are zeros here: the group's sum is the gathered state, exactly.
  if (group) host = detail::summed_over_group(host, *group);
  impl_->states[buffer] = host.to(options.device());
}

namespace {

// Tensors as one fp32 message, in order.
std::vector<std::byte> pack_fp32(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> pieces;
  std::size_t bytes = 0;
  for (const at::Tensor& tensor : tensors) {
    pieces.push_back(tensor.detach().to(at::kCPU, at::kFloat).contiguous());
    bytes += pieces.back().nbytes();
  }
  std::vector<std::byte> packed(bytes);  // one copy: the pieces straight into the message
  std::size_t offset = 0;
  for (const at::Tensor& piece : pieces) {
    std::memcpy(packed.data() + offset, piece.data_ptr(), piece.nbytes());
    offset += piece.nbytes();
  }
  return packed;
}

// Reads tensors shaped like the ones given from a packed fp32 message, in order.
class Unpacker {
 public:
  Unpacker(std::span<const std::byte> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}
  at::Tensor take(const at::Tensor& like, const std::string& what) {
    const std::int64_t elements = std::int64_t(bytes_.size() / sizeof(float));
    if (offset_ + like.numel() > elements)
      throw Error(where_, "the message has " + std::to_string(bytes_.size()) + " bytes, too few for " + what);
    at::Tensor host = at::empty(like.sizes(), at::TensorOptions().dtype(at::kFloat));
    std::memcpy(host.data_ptr(), bytes_.data() + offset_ * sizeof(float), host.nbytes());
    offset_ += like.numel();
    return host.to(like.options());
  }

 private:
  std::span<const std::byte> bytes_;
  std::string where_;
  std::int64_t offset_ = 0;  // in elements
};

}  // namespace

// A grad_allreduce's blocks' gradients as fp32 (zeros for a block without
// one yet), in block and parameter order, then the ends' where it carries them.
std::vector<std::byte> TorchBackend::gradient_bytes(const Op& op) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (int block = op.block; block < op.block + op.span; ++block) {
    const auto found = impl_->gradients.find(block);
    const auto& parameters = impl_->block_parameters(block);
    for (std::size_t i = 0; i < parameters.size(); ++i)
      tensors.push_back(found == impl_->gradients.end() ? at::zeros_like(parameters[i]) : found->second.at(i));
  }
  if (impl_->carries_ends(op))
    for (const at::Tensor& gradient : impl_->ends->gradients()) tensors.push_back(gradient);
  return pack_fp32(tensors);
}

void TorchBackend::assign_gradient_bytes(const Op& op, std::span<const std::byte> bytes) {
  at::NoGradGuard no_grad;
  Unpacker message(bytes, "rank " + std::to_string(impl_->rank) + ", " + std::string(to_string(op.kind)));
  for (int block = op.block; block < op.block + op.span; ++block) {
    std::vector<at::Tensor> summed;
    for (const at::Tensor& parameter : impl_->block_parameters(block))
      summed.push_back(message.take(parameter, "block " + std::to_string(block)));
    impl_->gradients[block] = std::move(summed);
  }
  if (impl_->zero_stage >= 1 && (op.kind == OpKind::grad_allreduce || op.kind == OpKind::reduce_scatter))
    impl_->sharded_sums.push_back(op);  // the update changes this replica's shard of it only
  if (!impl_->carries_ends(op)) return;
  std::vector<at::Tensor> summed;
  for (const at::Tensor& parameter : impl_->ends->parameters()) summed.push_back(message.take(parameter, "the embeddings"));
  impl_->ends->set_gradients(summed);
}

// The parameters in the gradients' packing, fp32.
std::vector<std::byte> TorchBackend::parameter_bytes(const Op& op) {
  at::NoGradGuard no_grad;
  return pack_fp32(impl_->packed_parameters(op));
}

// In place, and only into tensors whose values change: a kept step graph
// (a later micro-batch's adjoint) saved the parameters, and a stage-3
// all_gather amid a step brings the values they already have.
void TorchBackend::assign_parameter_bytes(const Op& op, std::span<const std::byte> bytes) {
  at::NoGradGuard no_grad;
  Unpacker message(bytes, "rank " + std::to_string(impl_->rank) + ", " + std::string(to_string(op.kind)));
  for (const at::Tensor& parameter : impl_->packed_parameters(op)) {
    const at::Tensor gathered = message.take(parameter, "block " + std::to_string(op.block) + " + " + std::to_string(op.span));
    if (!at::equal(gathered, parameter.detach())) parameter.detach().copy_(gathered);
  }
}

void TorchBackend::synchronize() {
  if (impl_->on_cuda) torch::cuda::synchronize();
}

bool TorchBackend::has_state(const Buffer& buffer) const { return impl_->states.count(buffer) > 0; }

std::vector<double> TorchBackend::state(const Buffer& buffer) const {
  return detail::to_doubles(impl_->state(buffer));
}

void TorchBackend::set_state(const Buffer& buffer, const std::vector<double>& values) {
  if (std::int64_t(values.size()) != state_elements())
    throw Error("set_state " + to_string(buffer), "expected " + std::to_string(state_elements()) +
                                                      " values, got " + std::to_string(values.size()));
  at::Tensor host = at::from_blob(const_cast<double*>(values.data()), impl_->state_shape(),
                                  at::TensorOptions().dtype(at::kDouble));
  impl_->states[buffer] = host.to(impl_->context.options);  // a copy: from_blob does not own
}

void TorchBackend::fill_random(const Buffer& buffer, std::uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  impl_->states[buffer] =
      at::randn(impl_->state_shape(), generator, at::TensorOptions().dtype(at::kDouble))
          .to(impl_->context.options);
}

std::int64_t TorchBackend::state_elements() const {
  const auto& m = impl_->context.model;
  return std::int64_t(m.batch / impl_->split()) * m.seq * m.d_model;
}

std::vector<int> TorchBackend::gradient_blocks() const {
  std::vector<int> blocks;
  for (const auto& entry : impl_->gradients) blocks.push_back(entry.first);
  if (impl_->ends)
    for (int id : impl_->ends->gradient_ids()) blocks.push_back(id);
  return blocks;
}

std::vector<double> TorchBackend::gradient(int block) const {
  std::vector<at::Tensor> tensors;
  if (block < 0 && impl_->ends) {
    tensors = impl_->ends->whole_gradient(block);
  } else {
    auto found = impl_->gradients.find(block);
    if (found == impl_->gradients.end())
      throw Error("rank " + std::to_string(impl_->rank), "no gradient for block " + std::to_string(block));
    tensors = found->second;
  }
  if (const auto& group = impl_->group; group && block >= 0) {
    at::NoGradGuard no_grad;
    const auto whole = detail::make_block_parameters(impl_->context, block, impl_->layers);
    tensors = detail::unshard_block_tensors(tensors, whole, impl_->shard, group->size());
  }
  std::vector<at::Tensor> flat;
  for (const auto& g : tensors) flat.push_back(g.reshape({-1}));
  return detail::to_doubles(at::cat(flat));
}

void TorchBackend::zero_gradients() {
  impl_->gradients.clear();
  impl_->sharded_sums.clear();
  if (impl_->ends) impl_->ends->zero_gradients();
}

void TorchBackend::set_learning_rate(double learning_rate) { impl_->learning_rate = learning_rate; }

std::vector<double> TorchBackend::parameters(int block) {
  std::vector<at::Tensor> flat;
  for (const auto& p : impl_->block_parameters(block)) flat.push_back(p.detach().reshape({-1}));
  return detail::to_doubles(at::cat(flat));
}

double TorchBackend::last_loss() const {
  if (!impl_->last_loss.defined()) return std::numeric_limits<double>::quiet_NaN();
  return impl_->last_loss.item<double>();
}

void TorchBackend::set_keep_step_graphs(bool keep) {
  impl_->keep_graphs = keep;
  if (!keep) impl_->graphs.clear();
}

std::int64_t TorchBackend::graph_misses() const { return impl_->graph_misses; }

void TorchBackend::clear_states() {
  impl_->graphs.clear();
  impl_->states.clear();
  impl_->registers.clear();
}

namespace detail {

void BackendAccess::set_input(TorchBackend& backend, const at::Tensor& input) {
  const auto expected = backend.impl_->context.state_shape();
  if (input.sizes() != at::IntArrayRef(expected))
    throw Error("input", "the network input must have the Program's state shape [batch, seq, d_model]");
  backend.impl_->input = input.detach().to(backend.impl_->context.options);
}

void BackendAccess::set_loss(TorchBackend& backend, LossFunction loss) { backend.impl_->loss_function = std::move(loss); }

void BackendAccess::set_dropout(TorchBackend& backend, double p, std::uint64_t seed) {
  auto& impl = *backend.impl_;
  if (impl.dropout != p || impl.dropout_seed != seed) impl.masks.clear();
  impl.dropout = p;
  impl.dropout_seed = seed;
}

std::vector<at::Tensor>& BackendAccess::parameters(TorchBackend& backend, int block) {
  return backend.impl_->block_parameters(block);
}

std::vector<at::Tensor>* BackendAccess::gradients(TorchBackend& backend, int block) {
  auto found = backend.impl_->gradients.find(block);
  return found == backend.impl_->gradients.end() ? nullptr : &found->second;
}

const at::Tensor* BackendAccess::state(const TorchBackend& backend, const schedule::Buffer& buffer) {
  auto found = backend.impl_->states.find(buffer);
  return found == backend.impl_->states.end() ? nullptr : &found->second;
}

}  // namespace detail

}  // namespace plait::executor
