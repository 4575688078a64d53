#include "plait/executor/torch_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/csrc/autograd/autograd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "detail/backend_access.hpp"
#include "detail/tensor_parallel.hpp"
#include "detail/transformer.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {

using schedule::Buffer;
using schedule::Op;
using schedule::OpKind;
using schedule::Space;

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
  if (model.vocab != 0)
    throw Error(where, "the executor does not run a full GPT step (vocab " + std::to_string(model.vocab) +
                           ") yet; plait simulate predicts it");
  if (model.d_model % model.heads != 0)
    throw Error(where, "d_model " + std::to_string(model.d_model) + " is not divisible by heads " +
                           std::to_string(model.heads));
  if (!(model.tstop > 0) || !std::isfinite(model.tstop))
    throw Error(where, "tstop must be a positive number");
  detail::scalar_type_of(model.dtype);
  if (detail::is_cuda(device) && !cuda_available())
    throw Error("--device " + device, "this libtorch sees no CUDA device");
  const at::Device chosen = detail::device_of(device);
  if (chosen.is_cuda() && chosen.index() >= int(torch::cuda::device_count()))
    throw Error("--device " + device, "there are only " + std::to_string(torch::cuda::device_count()) + " CUDA devices");
  if ((model.dtype == "bf16" || model.dtype == "fp16") && !chosen.is_cuda())
    throw Error(where, model.dtype + " runs on --device cuda only");
}

struct TorchBackend::Impl {
  // The autograd graph of a forward step from a state buffer, kept so that a
  // later step_adjoint at the same state tensor runs only the backward pass.
  struct StepGraph {
    at::Tensor input;   // the state tensor the step read (identity check)
    at::Tensor leaf;    // its detached copy that requires grad
    at::Tensor output;  // Phi(leaf), with the graph
  };
  using GraphKey = std::tuple<Buffer, int, int>;  // state buffer, block, span

  detail::ModelContext context;
  int rank;
  int layers;
  double h;
  bool on_cuda;
  int micro_batches;           // the batch's split (pipelines); states hold one micro-batch
  int replicas;                // data parallelism: the batch's split over replicas
  int replica;                 // this rank's replica: which samples it runs
  at::Tensor input, target, zeros;
  std::map<int, at::Tensor> micro_losses;  // the last loss of each micro-batch
  std::map<int, std::vector<at::Tensor>> parameters;
  std::map<int, std::vector<at::Tensor>> gradients;
  // States are never modified in place once stored, so copy/input/zero can
  // share one tensor between buffers.
  std::map<Buffer, at::Tensor> states;
  std::map<Buffer, double> registers;
  at::Tensor last_loss;
  at::Tensor staging;  // host copy behind bytes_of on cuda
  bool keep_graphs = true;
  std::map<GraphKey, StepGraph> graphs;
  std::int64_t graph_misses = 0;
  detail::BackendAccess::LossFunction loss_function;  // set by the trainer; else J = 0.5 mean((u - target)^2)
  double dropout = 0;
  std::uint64_t dropout_seed = 0;
  std::map<int, detail::DropoutMasks> masks;  // per block, for dropout_seed
  std::unique_ptr<GroupSum> group;  // the tensor-parallel group; null for whole blocks
  int shard = 0;                    // this rank's place in it

  Impl(const schedule::Program& program, int rank_, const std::string& device, std::unique_ptr<GroupSum> group_)
      : context(program.model, device),
        rank(rank_),
        layers(program.layers),
        h(program.step_size()),
        on_cuda(detail::is_cuda(device)),
        micro_batches(program.micro_batches),
        replicas(program.replicas),
        replica(schedule::replica_of(program, rank_)) {
    const std::vector<int> members = schedule::tensor_group(program, rank);
    if (members.size() > 1) {
      if (!group_ || group_->size() != int(members.size()))
        throw Error("rank " + std::to_string(rank), "a tensor-parallel Program needs the rank's group of " +
                                                        std::to_string(members.size()) + " to sum over");
      group = std::move(group_);
      shard = int(std::find(members.begin(), members.end(), rank) - members.begin());
    }
    at::NoGradGuard no_grad;
    input = detail::make_input(context);
    target = detail::make_target(context);
    zeros = at::zeros(state_shape(), context.options);
    for (const schedule::BlockRange& chunk : schedule::owned_blocks(program, rank))
      for (int block = chunk.first; block < chunk.end; ++block) block_parameters(block);
  }

  // States hold one micro-batch of one replica: the batch split this many ways.
  int split() const { return micro_batches * replicas; }

  std::vector<int64_t> state_shape() const {
    std::vector<int64_t> shape = context.state_shape();
    shape[0] /= split();
    return shape;
  }

  // This replica's micro-batch's rows of the whole batch's input or target
  // (replica k holds rows k/D .. (k+1)/D of the batch, in micro-batches).
  at::Tensor rows_of(const at::Tensor& whole, int micro) const {
    const int64_t rows = whole.size(0) / split();
    return whole.narrow(0, (int64_t{replica} * micro_batches + micro) * rows, rows);
  }

  std::string where(const Op& op) const {
    return "rank " + std::to_string(rank) + ", " + std::string(to_string(op.kind)) + " " +
           to_string(op.dst);
  }

  std::vector<at::Tensor>& block_parameters(int block) {
    auto found = parameters.find(block);
    if (found != parameters.end()) return found->second;
    if (block < 0 || block >= layers)
      throw Error("rank " + std::to_string(rank),
                  "block " + std::to_string(block) + " outside 0.." + std::to_string(layers - 1));
    at::NoGradGuard no_grad;
    auto made = detail::make_block_parameters(context, block, layers);
    if (group) made = detail::shard_block_parameters(made, shard, group->size());
    for (auto& p : made) p.requires_grad_(true);  // leaves for step_adjoint's vjp
    return parameters.emplace(block, std::move(made)).first->second;
  }

  const at::Tensor& state(const Buffer& buffer, const Op* op = nullptr) const {
    auto found = states.find(buffer);
    if (found == states.end())
      throw Error(op ? where(*op) : "rank " + std::to_string(rank),
                  "buffer " + to_string(buffer) + " is read before it is written");
    return found->second;
  }

  void check_step(const Op& op) {
    if (op.span < 1) throw Error(where(op), "span must be at least 1");
    block_parameters(op.block);
  }



  const detail::DropoutMasks* masks_of(int block) {
    if (dropout <= 0) return nullptr;
    if (split() > 1)
      throw Error("rank " + std::to_string(rank), "dropout over micro-batches or replicas is not supported");
    auto found = masks.find(block);
    if (found == masks.end()) found = masks.emplace(block, detail::make_dropout_masks(context, dropout, dropout_seed, block)).first;
    return &found->second;
  }

  StepGraph record_step(const at::Tensor& input, const Op& op) {
    at::AutoGradMode enable_grad(true);
    at::Tensor leaf = input.detach().requires_grad_(true);
    at::Tensor output =
        detail::block_step(context, parameters.at(op.block), leaf, op.span * h, masks_of(op.block), group.get());
    return {input, leaf, output};
  }

  // The Program says which forward steps keep their graph (only those whose
  // state the adjoint reads); set_keep_step_graphs(false) overrides it.
  void step(const Op& op) {
    check_step(op);
    const at::Tensor& input = state(op.a, &op);
    at::Tensor out;
    if (keep_graphs && op.graph == schedule::GraphUse::keep) {
      const StepGraph graph = record_step(input, op);
      graphs[GraphKey{op.a, op.block, op.span}] = graph;
      out = graph.output.detach();
    } else {
      at::NoGradGuard no_grad;
      out = detail::block_step(context, parameters.at(op.block), input, op.span * h, masks_of(op.block), group.get());
    }
    at::NoGradGuard no_grad;
    states[op.dst] = op.b.empty() ? out : out + state(op.b, &op);
  }

  // Vector-Jacobian product of Phi at state c: on the graph its forward step
  // kept if c is still that tensor, else (and where the Program says
  // recompute) on a recomputed step, freed after use. A step_weight takes the
  // parameters' part only (autograd runs the block's backward again to reach
  // them: exact, not cheaper than the joint product on this backend).
  void step_adjoint(const Op& op) {
    check_step(op);
    const std::vector<at::Tensor>& p = parameters.at(op.block);
    const at::Tensor& adjoint = state(op.a, &op);
    const at::Tensor& c = state(op.c, &op);
    const auto found = op.graph == schedule::GraphUse::recompute ? graphs.end()
                                                                 : graphs.find(GraphKey{op.c, op.block, op.span});
    const bool kept = found != graphs.end() && found->second.input.is_same(c);
    if (!kept && keep_graphs && op.graph != schedule::GraphUse::recompute) graph_misses += 1;
    const StepGraph graph = kept ? found->second : record_step(c, op);
    const bool release = kept && op.graph == schedule::GraphUse::release;
    if (release) graphs.erase(found);  // its last use: `graph` holds it until the vjp is done
    const bool weights_only = op.kind == OpKind::step_weight;
    std::vector<at::Tensor> inputs;
    if (!weights_only) inputs.push_back(graph.leaf);
    if (op.accumulate_grad || weights_only) inputs.insert(inputs.end(), p.begin(), p.end());
    std::vector<at::Tensor> vjp;
    {
      at::AutoGradMode enable_grad(true);
      vjp = torch::autograd::grad({graph.output}, inputs, {adjoint}, /*retain_graph=*/kept && !release);
    }
    at::NoGradGuard no_grad;
    if (!weights_only) states[op.dst] = op.b.empty() ? vjp[0] : vjp[0] + state(op.b, &op);
    if (!op.accumulate_grad && !weights_only) return;
    const std::size_t first = weights_only ? 0 : 1;  // vjp[0] is the state's part, if asked for
    auto& accumulated = gradients[op.block];
    if (accumulated.empty())
      for (std::size_t i = first; i < vjp.size(); ++i) accumulated.push_back(vjp[i]);
    else
      for (std::size_t i = first; i < vjp.size(); ++i) accumulated[i - first].add_(vjp[i]);
  }

  void compute(const Op& op) {
    at::NoGradGuard no_grad;
    switch (op.kind) {
      case OpKind::input: states[op.dst] = split() > 1 ? rows_of(input, op.dst.micro) : input; return;
      case OpKind::zero:
        if (op.dst.space == Space::reg) registers[op.dst] = 0;
        else states[op.dst] = zeros;
        return;
      case OpKind::copy:
        if (op.dst.space == Space::reg) registers[op.dst] = registers.at(op.a);
        else states[op.dst] = state(op.a, &op);
        return;
      case OpKind::sub: states[op.dst] = state(op.a, &op) - state(op.b, &op); return;
      case OpKind::norm_sq:
        registers[op.dst] += state(op.a, &op).to(at::kDouble).pow(2).sum().item<double>();
        return;
      case OpKind::step: step(op); return;
      case OpKind::step_adjoint:
      case OpKind::step_weight: step_adjoint(op); return;
      case OpKind::loss: {
        const at::Tensor& u = state(op.a, &op);
        if (loss_function) {
          if (split() > 1) throw Error(where(op), "a training loss over micro-batches or replicas is not supported");
          states[op.dst] = loss_function(u);
          return;
        }
        if (split() == 1) {
          last_loss = detail::loss_value(u, target);
          states[op.dst] = detail::loss_gradient(u, target);
          return;
        }
        // The whole batch's mean loss: each micro-batch's mean counts 1/(M D),
        // and so does its gradient; this rank's last_loss is its replica's part.
        const at::Tensor micro_target = rows_of(target, op.a.micro);
        micro_losses[op.a.micro] = detail::loss_value(u, micro_target) / double(split());
        last_loss = at::zeros({}, u.options());
        for (const auto& [micro, loss] : micro_losses) last_loss = last_loss + loss;
        states[op.dst] = detail::loss_gradient(u, micro_target) / double(split());
        return;
      }
      default:
        throw Error(where(op), "not a compute op");
    }
  }
};

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

// A grad_allreduce's blocks' gradients as fp32 (zeros for a block without
// one yet), in block and parameter order.
std::vector<std::byte> TorchBackend::gradient_bytes(const Op& op) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> pieces;
  std::size_t bytes = 0;
  for (int block = op.block; block < op.block + op.span; ++block) {
    const auto found = impl_->gradients.find(block);
    const auto& parameters = impl_->block_parameters(block);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const at::Tensor& gradient = found == impl_->gradients.end() ? at::zeros_like(parameters[i]) : found->second.at(i);
      pieces.push_back(gradient.to(at::kCPU, at::kFloat).contiguous());
      bytes += pieces.back().nbytes();
    }
  }
  std::vector<std::byte> packed(bytes);  // one copy: the pieces straight into the message
  std::size_t offset = 0;
  for (const at::Tensor& piece : pieces) {
    std::memcpy(packed.data() + offset, piece.data_ptr(), piece.nbytes());
    offset += piece.nbytes();
  }
  return packed;
}

void TorchBackend::assign_gradient_bytes(const Op& op, std::span<const std::byte> bytes) {
  at::NoGradGuard no_grad;
  std::int64_t offset = 0;  // in elements
  const std::int64_t elements = std::int64_t(bytes.size() / sizeof(float));
  for (int block = op.block; block < op.block + op.span; ++block) {
    std::vector<at::Tensor> summed;
    for (const at::Tensor& parameter : impl_->block_parameters(block)) {
      if (offset + parameter.numel() > elements)
        throw Error("rank " + std::to_string(impl_->rank) + ", grad_allreduce",
                    "the summed gradients have " + std::to_string(bytes.size()) + " bytes, too few for block " +
                        std::to_string(block));
      at::Tensor host = at::empty(parameter.sizes(), at::TensorOptions().dtype(at::kFloat));
      std::memcpy(host.data_ptr(), bytes.data() + offset * sizeof(float), host.nbytes());
      summed.push_back(host.to(parameter.options()));
      offset += parameter.numel();
    }
    impl_->gradients[block] = std::move(summed);
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
  return blocks;
}

std::vector<double> TorchBackend::gradient(int block) const {
  auto found = impl_->gradients.find(block);
  if (found == impl_->gradients.end())
    throw Error("rank " + std::to_string(impl_->rank), "no gradient for block " + std::to_string(block));
  std::vector<at::Tensor> tensors = found->second;
  if (const auto& group = impl_->group) {
    at::NoGradGuard no_grad;
    const auto whole = detail::make_block_parameters(impl_->context, block, impl_->layers);
    tensors = detail::unshard_block_tensors(tensors, whole, impl_->shard, group->size());
  }
  std::vector<at::Tensor> flat;
  for (const auto& g : tensors) flat.push_back(g.reshape({-1}));
  return detail::to_doubles(at::cat(flat));
}

void TorchBackend::zero_gradients() { impl_->gradients.clear(); }

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
