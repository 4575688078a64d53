// Names, parsing and sizes of the IR's parts.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule {
namespace {

constexpr std::array<std::string_view, 8> space_names = {"", "u", "g", "w", "gw", "tmp", "reg", "v"};

constexpr std::array<std::string_view, 17> op_kind_names = {
    "input",     "zero",        "copy",           "sub",         "norm_sq", "step",
    "step_adjoint", "loss",     "send",           "recv",        "allreduce", "record_norm",
    "grad_allreduce", "step_weight", "update", "reduce_scatter", "all_gather"};

bool parse_int(std::string_view text, std::int32_t& value) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

}  // namespace

std::string to_string(const Buffer& buffer) {
  if (buffer.empty()) return "";
  std::string out(space_names[static_cast<int>(buffer.space)]);
  if (buffer.space == Space::tmp || buffer.space == Space::reg) {
    return out + "[" + std::to_string(buffer.point) + "]";
  }
  out += "[" + std::to_string(buffer.level) + "][" + std::to_string(buffer.point) + "]";
  return buffer.micro > 0 ? out + "@" + std::to_string(buffer.micro) : out;
}

Buffer parse_buffer(const std::string& full_text) {
  const auto bad = [&](const std::string& why) {
    return Error("buffer \"" + full_text + "\"", why);
  };
  Buffer buffer;
  std::string text = full_text;
  if (const auto at = text.find('@'); at != std::string::npos) {
    if (!parse_int(std::string_view(text).substr(at + 1), buffer.micro) || buffer.micro < 0)
      throw bad("expected name[level][point]@micro_batch");
    text.resize(at);
  }
  const auto open = text.find('[');
  if (open == std::string::npos || text.empty() || text.back() != ']') throw bad("expected name[level][point]");
  const std::string_view name(text.data(), open);
  for (std::size_t i = 1; i < space_names.size(); ++i) {
    if (name == space_names[i]) buffer.space = static_cast<Space>(i);
  }
  if (buffer.empty()) throw bad("unknown space \"" + std::string(name) + "\"");
  const std::string_view rest(text.data() + open, text.size() - open);
  const bool scalar = buffer.space == Space::tmp || buffer.space == Space::reg;
  if (scalar) {
    if (!parse_int(rest.substr(1, rest.size() - 2), buffer.point)) throw bad("bad index");
  } else {
    const auto middle = rest.find("][");
    if (middle == std::string_view::npos ||
        !parse_int(rest.substr(1, middle - 1), buffer.level) ||
        !parse_int(rest.substr(middle + 2, rest.size() - middle - 3), buffer.point)) {
      throw bad("expected name[level][point]");
    }
  }
  if (buffer.level < 0 || buffer.point < 0) throw bad("negative index");
  if (scalar && buffer.micro > 0) throw bad("tmp and reg buffers have no micro-batch");
  return buffer;
}

std::string_view to_string(OpKind kind) { return op_kind_names[static_cast<int>(kind)]; }

OpKind parse_op_kind(std::string_view text) {
  for (std::size_t i = 0; i < op_kind_names.size(); ++i) {
    if (text == op_kind_names[i]) return static_cast<OpKind>(i);
  }
  throw Error("", "unknown op kind \"" + std::string(text) + "\"");
}

bool is_communication(OpKind kind) {
  return kind == OpKind::send || kind == OpKind::recv || is_collective(kind);
}

bool is_collective(OpKind kind) { return kind == OpKind::allreduce || is_replica_collective(kind); }

bool is_replica_collective(OpKind kind) {
  return kind == OpKind::grad_allreduce || kind == OpKind::reduce_scatter || kind == OpKind::all_gather;
}

bool is_block_step(OpKind kind) {
  return kind == OpKind::step || kind == OpKind::step_adjoint || kind == OpKind::step_weight;
}

bool adds_to_gradient(const Op& op) {
  return op.kind == OpKind::step_weight || (op.kind == OpKind::step_adjoint && op.accumulate_grad);
}

std::string_view cost_key(const Op& op) {
  switch (op.kind) {
    case OpKind::input: return cost_keys::input;
    case OpKind::zero: return cost_keys::vec_zero;
    case OpKind::copy: return cost_keys::vec_copy;
    case OpKind::sub: return cost_keys::vec_sub;
    case OpKind::norm_sq: return cost_keys::vec_norm;
    case OpKind::step: return op.graph == GraphUse::keep ? cost_keys::block_forward_keep : cost_keys::block_forward;
    case OpKind::step_adjoint:
      if (op.graph == GraphUse::recompute) {
        return op.accumulate_grad ? cost_keys::block_gradient_recompute : cost_keys::block_adjoint_recompute;
      }
      return op.accumulate_grad ? cost_keys::block_gradient : cost_keys::block_adjoint;
    case OpKind::loss: return cost_keys::loss;
    case OpKind::send: return cost_keys::send;
    case OpKind::recv: return cost_keys::recv;
    case OpKind::allreduce: return cost_keys::allreduce;
    case OpKind::record_norm: return cost_keys::record;
    case OpKind::grad_allreduce: return cost_keys::grad_allreduce;
    case OpKind::step_weight: return cost_keys::block_weight_gradient;
    case OpKind::update: return cost_keys::update;
    case OpKind::reduce_scatter: return cost_keys::reduce_scatter;
    case OpKind::all_gather: return cost_keys::all_gather;
  }
  return "";
}

std::string_view to_string(GraphUse use) {
  switch (use) {
    case GraphUse::keep: return "keep";
    case GraphUse::recompute: return "recompute";
    case GraphUse::release: return "release";
    case GraphUse::none: break;
  }
  return "none";
}

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::forward: return "forward";
    case Phase::adjoint: return "adjoint";
    case Phase::none: break;
  }
  return "none";
}

std::string_view to_string(Relax relax) { return relax == Relax::F ? "F" : "FCF"; }

Relax parse_relax(std::string_view text) {
  if (text == "F") return Relax::F;
  if (text == "FCF") return Relax::FCF;
  throw Error("relax", "expected F or FCF, got \"" + std::string(text) + "\"");
}

void check_model(const ModelDesc& model) {
  if (model.kind != "transformer" && model.kind != "linear" && model.kind != "mlp") {
    throw Error("model.kind", "unknown model kind \"" + model.kind + "\" (transformer, linear, mlp)");
  }
  if (!(model.tstop > 0)) throw Error("model.tstop", "must be > 0");
  if (model.kind == "mlp" && model.width < 1) throw Error("model.width", "must be >= 1");
  if (model.kind == "mlp" && model.width > max_mlp_width) {
    throw Error("model.width", std::to_string(model.width) + " above the limit of " + std::to_string(max_mlp_width));
  }
  if (model.kind != "transformer") {
    if (model.vocab != 0 || model.tensor_parallel != 1 || model.sequence_parallel || model.selective_recompute)
      throw Error("model", "only a transformer has a vocabulary, tensor or sequence parallelism or selective "
                           "recomputation, not " + model.kind);
    return;
  }
  for (const auto& [name, value] : {std::pair{"d_model", model.d_model}, {"heads", model.heads},
                                    {"seq", model.seq}, {"batch", model.batch}, {"mlp_ratio", model.mlp_ratio}}) {
    if (value < 1) throw Error(std::string("model.") + name, "must be >= 1");
  }
  const double elements = double(model.batch) * model.seq * model.d_model;
  if (elements > max_state_elements) {
    char why[160];
    std::snprintf(why, sizeof why, "a state of batch * seq * d_model = %.2g elements is above the limit of %.2g",
                  elements, max_state_elements);
    throw Error("model", why);
  }
  if (model.d_model % model.heads != 0) {
    throw Error("model", "d_model " + std::to_string(model.d_model) + " is not divisible by heads " +
                             std::to_string(model.heads));
  }
  if (model.init != "normal" && model.init != "pytorch" && model.init != "depth-scaled") {
    throw Error("model.init", "unknown initialisation \"" + model.init + "\" (normal, pytorch, depth-scaled)");
  }
  state_bytes(model);  // checks the dtype
  if (model.vocab < 0) throw Error("model.vocab", "must be >= 0");
  const std::int32_t tp = model.tensor_parallel;
  if (tp < 1 || tp > max_ranks) throw Error("model.tensor_parallel", "must be in 1.." + std::to_string(max_ranks));
  const auto split = [&](const char* what, std::int64_t value) {
    if (value % tp != 0)
      throw Error("tp", std::string(what) + " " + std::to_string(value) + " is not divisible by " +
                            std::to_string(tp) + " tensor-parallel ranks");
  };
  split("heads", model.heads);
  split("MLP width", std::int64_t{model.mlp_ratio} * model.d_model);
  split("vocabulary", model.vocab);
  if (model.sequence_parallel) {
    if (tp < 2) throw Error("sequence-parallel", "splits the sequence over the tensor-parallel ranks: it needs tp >= 2");
    split("sequence", model.seq);
  }
  if (model.buffer_blocks < 0 || model.buffer_blocks > 1024)
    throw Error("model.buffer_blocks", "must be in 0..1024, got " + std::to_string(model.buffer_blocks));
  if (model.buffer_blocks > 0 && model.vocab == 0)
    throw Error("model.buffer_blocks", "buffer blocks sit beside a full step's embedding and head: they need a vocabulary");
}

ModelDesc micro_batch_model(const Program& program) {
  ModelDesc model = program.model;
  const std::int64_t split = std::int64_t{std::max(program.micro_batches, 1)} * std::max(program.replicas, 1);
  if (split > 1) model.batch = static_cast<std::int32_t>(model.batch / split);
  return model;
}

std::int32_t ranks_per_replica(const Program& program) {
  return program.replicas > 1 ? program.ranks / program.replicas : program.ranks;
}

std::int32_t replica_of(const Program& program, int rank) {
  return rank / std::max(ranks_per_replica(program), 1);
}

std::vector<BlockRange> owned_blocks(const Program& program, int rank) {
  const std::int32_t tp = std::max(program.model.tensor_parallel, 1);
  const std::int32_t stages = std::max(ranks_per_replica(program) / tp, 1);
  std::vector<BlockRange> chunks;
  for (std::size_t chunk = rank % (stages * tp) / tp; chunk + 1 < program.partition.size(); chunk += stages)
    chunks.push_back({program.partition[chunk], program.partition[chunk + 1]});
  return chunks;
}

std::vector<BlockRange> trained_blocks(const Program& program, int rank) {
  std::vector<BlockRange> trained;
  for (BlockRange chunk : owned_blocks(program, rank)) {
    chunk.first = std::max(chunk.first, program.frozen_blocks);
    if (chunk.first < chunk.end) trained.push_back(chunk);
  }
  return trained;
}

std::vector<int> collective_group(const Program& program, int rank, OpKind kind) {
  const int tp = std::max(program.model.tensor_parallel, 1);
  const int per_replica = std::max(ranks_per_replica(program), 1);
  const int replicas = program.ranks / per_replica;
  std::vector<int> group;
  if (is_replica_collective(kind))
    for (int replica = 0; replica < replicas; ++replica) group.push_back(replica * per_replica + rank % per_replica);
  else  // a replica's ranks of the same tensor-parallel shard (each holds the whole value)
    for (int position = rank % tp; position < per_replica; position += tp)
      group.push_back(rank / per_replica * per_replica + position);
  return group;
}

std::vector<int> tensor_group(const Program& program, int rank) {
  const int tp = std::max(program.model.tensor_parallel, 1);
  std::vector<int> group;
  for (int shard = 0; shard < tp; ++shard) group.push_back(rank / tp * tp + shard);
  return group;
}

int tensor_allreduces(const Program& program, const Op& op) {
  if (program.model.tensor_parallel <= 1) return 0;
  switch (op.kind) {
    case OpKind::step: return 2;
    case OpKind::step_adjoint: return op.graph == GraphUse::recompute ? 4 : 2;
    case OpKind::input:
    case OpKind::loss: return program.model.vocab > 0 ? 1 : 0;
    default: return 0;
  }
}

std::int64_t state_elements(const ModelDesc& model) {
  if (model.kind == "transformer") {
    return std::int64_t{model.batch} * model.seq * model.d_model;
  }
  if (model.kind == "linear") return 1;
  if (model.kind == "mlp") return model.width;
  throw Error("model", "unknown model kind \"" + model.kind + "\" (transformer, linear, mlp)");
}

std::int64_t state_bytes(const ModelDesc& model) {
  if (model.kind != "transformer") return state_elements(model) * 8;  // reference: double
  if (model.dtype == "fp32") return state_elements(model) * 4;
  if (model.dtype == "bf16" || model.dtype == "fp16") return state_elements(model) * 2;
  throw Error("model.dtype", "expected fp32, bf16 or fp16, got \"" + model.dtype + "\"");
}

// FLOPs and bytes touched per op. A transformer block of width d on n = batch*seq
// tokens: QKV+output projections 8nd^2, MLP 4*mlp_ratio*n*d^2 (multiply-add = 2),
// attention scores and weighted sum 4*batch*seq^2*d. The executor keeps each
// forward step's graph, so an adjoint is a backward only: about 1.1 forwards for
// the state, 2.1 with parameter gradients; zero, copy and input only alias
// tensors. This table is a summary carried in the Program; costmodels/ has the
// per-kernel model the simulator prices with.
std::map<std::string, Work> work_table(const ModelDesc& model) {
  const double elements = static_cast<double>(state_elements(model));
  const double bytes = static_cast<double>(state_bytes(model));
  Work forward;
  if (model.kind == "transformer") {
    const double n = double(model.batch) * model.seq, d = model.d_model;
    const double parameters = (4.0 + 2.0 * model.mlp_ratio) * d * d;
    forward.flops = 2 * n * parameters + 4.0 * model.batch * double(model.seq) * model.seq * d;
    forward.bytes = parameters * (bytes / elements) + 2 * (4 + model.mlp_ratio) * bytes;
  } else {
    const double width = elements;
    forward.flops = 2 * width * width + 4 * width;
    forward.bytes = (width * width + 2 * width) * 8;
  }
  const Work vector_one{elements, 2 * bytes}, vector_two{elements, 3 * bytes};
  std::map<std::string, Work> table;
  table[std::string(cost_keys::block_forward)] = forward;
  table[std::string(cost_keys::block_forward_keep)] = forward;
  table[std::string(cost_keys::block_adjoint)] = {1.1 * forward.flops, 1.1 * forward.bytes};
  table[std::string(cost_keys::block_gradient)] = {2.1 * forward.flops, 2.1 * forward.bytes};
  table[std::string(cost_keys::block_weight_gradient)] = forward;  // the gradient less the adjoint
  // Recomputing adjoints run the forward step first.
  table[std::string(cost_keys::block_adjoint_recompute)] = {2.1 * forward.flops, 2.1 * forward.bytes};
  table[std::string(cost_keys::block_gradient_recompute)] = {3.1 * forward.flops, 3.1 * forward.bytes};
  table[std::string(cost_keys::vec_zero)] = {0, 0};
  table[std::string(cost_keys::vec_copy)] = {0, 0};
  table[std::string(cost_keys::vec_sub)] = vector_two;
  table[std::string(cost_keys::vec_norm)] = vector_one;
  table[std::string(cost_keys::input)] = {0, 0};
  table[std::string(cost_keys::loss)] = vector_two;
  return table;
}

}  // namespace plait::schedule
