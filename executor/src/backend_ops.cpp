// The torch backend's ops: block steps and their adjoints (kept or
// recomputed graphs), the loss, the optimizer step, and the small ops.
#include <algorithm>
#include <tuple>

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include "detail/backend_impl.hpp"
#include "detail/tensor_parallel.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::executor {

TorchBackend::Impl::Impl(const schedule::Program& program, int rank_, const std::string& device, std::unique_ptr<GroupSum> group_)
    : context(program.model, device),
      rank(rank_),
      layers(program.layers),
      h(program.step_size()),
      on_cuda(detail::is_cuda(device)),
      micro_batches(program.micro_batches),
      replicas(program.replicas),
      replica(schedule::replica_of(program, rank_)),
      zero_stage(program.zero_stage) {
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
  if (program.model.vocab > 0) {
    tokens = detail::make_tokens(context);
    const schedule::EndsHeld held = schedule::ends_held(program, rank);
    ends = std::make_unique<detail::GptEnds>(context, held.first, held.last, shard, group.get());
  }
}

std::vector<at::Tensor>& TorchBackend::Impl::block_parameters(int block) {
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

void TorchBackend::Impl::check_step(const Op& op) {
  if (op.span < 1) throw Error(where(op), "span must be at least 1");
  block_parameters(op.block);
}

const detail::DropoutMasks* TorchBackend::Impl::masks_of(int block) {
  if (dropout <= 0) return nullptr;
  if (split() > 1)
    throw Error("rank " + std::to_string(rank), "dropout over micro-batches or replicas is not supported");
  auto found = masks.find(block);
  if (found == masks.end()) found = masks.emplace(block, detail::make_dropout_masks(context, dropout, dropout_seed, block)).first;
  return &found->second;
}

TorchBackend::Impl::StepGraph TorchBackend::Impl::record_step(const at::Tensor& input, const Op& op) {
  at::AutoGradMode enable_grad(true);
  at::Tensor leaf = input.detach().requires_grad_(true);
  at::Tensor output =
      detail::block_step(context, parameters.at(op.block), leaf, op.span * h, masks_of(op.block), group.get(), shard);
  return {input, leaf, output};
}

// The Program says which forward steps keep their graph (only those whose
// state the adjoint reads); set_keep_step_graphs(false) overrides it.
void TorchBackend::Impl::step(const Op& op) {
  check_step(op);
  const at::Tensor& input = state(op.a, &op);
  at::Tensor out;
  if (keep_graphs && op.graph == schedule::GraphUse::keep) {
    const StepGraph graph = record_step(input, op);
    graphs[GraphKey{op.a, op.block, op.span}] = graph;
    out = graph.output.detach();
  } else {
    at::NoGradGuard no_grad;
    out = detail::block_step(context, parameters.at(op.block), input, op.span * h, masks_of(op.block), group.get(),
                             shard);
  }
  at::NoGradGuard no_grad;
  states[op.dst] = op.b.empty() ? out : out + state(op.b, &op);
}

// Vector-Jacobian product of Phi at state c: on the graph its forward step
// kept if c is still that tensor, else (and where the Program says
// recompute) on a recomputed step, freed after use. A step_weight takes the
// parameters' part only (autograd runs the block's backward again to reach
// them: exact, not cheaper than the joint product on this backend).
void TorchBackend::Impl::step_adjoint(const Op& op) {
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
  // Where block 0's gradient counts (once a micro-batch), the adjoint at
  // the network input is final: the embeddings' backward (the input op's) runs here.
  if (ends && op.block == 0)
    ends->add_input_gradient(rows_of(tokens, op.a.micro), state(Buffer{op.a.space, 0, 0, op.a.micro}, &op));
}

// J of the micro-batch (the whole batch's mean: each micro-batch's mean
// counts 1 / (M D), and so does its gradient); this rank's last_loss is its
// replica's part of the batch's.
void TorchBackend::Impl::loss(const Op& op) {
  const at::Tensor& u = state(op.a, &op);
  if (loss_function) {
    if (split() > 1) throw Error(where(op), "a training loss over micro-batches or replicas is not supported");
    states[op.dst] = loss_function(u);
    return;
  }
  const double scale = 1.0 / double(split());
  at::Tensor value, gradient;
  if (ends) {
    std::tie(value, gradient) = ends->loss(u, rows_of(tokens, op.a.micro), scale);
  } else {
    const at::Tensor micro_target = rows_of(target, op.a.micro);
    value = detail::loss_value(u, micro_target) * scale;
    gradient = detail::loss_gradient(u, micro_target) * scale;
  }
  micro_losses[op.a.micro] = value;
  last_loss = at::zeros({}, u.options());
  for (const auto& [micro, part] : micro_losses) last_loss = last_loss + part;
  states[op.dst] = gradient;
}

// The optimizer step over every parameter this rank holds that has a gradient.
// With ZeRO, every packed buffer of a gradient collective this step ran keeps
// its pre-step values outside this replica's shard (member `replica` of D owns
// elements [replica c, (replica + 1) c), c = ceil(elements / D)): the
// all_gather that follows brings their owners' updates. The optimizer's
// moments of those elements are never read.
void TorchBackend::Impl::update() {
  std::vector<detail::ParameterSlot> slots;
  for (auto& [block, tensors] : parameters) {
    const auto found = gradients.find(block);
    if (found == gradients.end()) continue;
    for (std::size_t i = 0; i < tensors.size(); ++i)
      slots.push_back({"block" + std::to_string(block) + "." + std::to_string(i), tensors[i], found->second[i]});
  }
  if (ends) {
    const auto end_parameters = ends->parameters(), end_gradients = ends->gradients();
    for (std::size_t i = 0; i < end_parameters.size(); ++i)
      slots.push_back({"end." + std::to_string(i), end_parameters[i], end_gradients[i]});
  }
  struct Kept {
    at::Tensor parameter, before;
    std::int64_t owned_first, owned_end;  // in the tensor's elements
  };
  std::vector<Kept> kept;
  if (zero_stage >= 1) {
    for (const Op& op : sharded_sums) {
      const std::vector<at::Tensor> tensors = packed_parameters(op);
      std::int64_t elements = 0;
      for (const at::Tensor& t : tensors) elements += t.numel();
      const std::int64_t shard = (elements + replicas - 1) / replicas;
      const std::int64_t first = std::int64_t{replica} * shard, end = first + shard;
      std::int64_t offset = 0;
      for (const at::Tensor& t : tensors) {
        if (!t.is_contiguous()) throw Error("rank " + std::to_string(rank) + ", update", "a non-contiguous parameter");
        const std::int64_t n = t.numel();
        const std::int64_t lo = std::clamp(first - offset, std::int64_t{0}, n);
        const std::int64_t hi = std::clamp(end - offset, std::int64_t{0}, n);
        if (lo > 0 || hi < n) kept.push_back({t, t.detach().clone(), lo, std::max(lo, hi)});
        offset += n;
      }
    }
  }
  optimizer.step(slots, learning_rate);
  at::NoGradGuard no_grad;
  for (const Kept& k : kept) {
    at::Tensor flat = k.parameter.detach().view({-1}), before = k.before.view({-1});
    const std::int64_t n = flat.numel();
    if (k.owned_first > 0) flat.narrow(0, 0, k.owned_first).copy_(before.narrow(0, 0, k.owned_first));
    if (k.owned_end < n) flat.narrow(0, k.owned_end, n - k.owned_end).copy_(before.narrow(0, k.owned_end, n - k.owned_end));
  }
  sharded_sums.clear();
}

// The ends' gradients travel with the grad_allreduce whose size says so
// (the Program adds them to the rank's last one).
bool TorchBackend::Impl::carries_ends(const Op& op) const {
  return ends && ends->holds_any() &&
         schedule::carries_end_gradients(context.model, op, zero_stage > 0 ? replicas : 1);
}

std::vector<at::Tensor> TorchBackend::Impl::packed_parameters(const Op& op) {
  std::vector<at::Tensor> tensors;
  for (int block = op.block; block < op.block + op.span; ++block) {
    const auto& p = block_parameters(block);
    tensors.insert(tensors.end(), p.begin(), p.end());
  }
  if (carries_ends(op))
    for (const at::Tensor& p : ends->parameters()) tensors.push_back(p);
  return tensors;
}

void TorchBackend::Impl::compute(const Op& op) {
  at::NoGradGuard no_grad;
  switch (op.kind) {
    case OpKind::input:
      if (ends) states[op.dst] = ends->embed(rows_of(tokens, op.dst.micro));
      else states[op.dst] = split() > 1 ? rows_of(input, op.dst.micro) : input;
      return;
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
    case OpKind::loss: loss(op); return;
    case OpKind::update: update(); return;
    default:
      throw Error(where(op), "not a compute op");
  }
}

}  // namespace plait::executor
