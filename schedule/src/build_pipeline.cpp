// Builders: pipeline schedules (GPipe, 1F1B, interleaved 1F1B) over micro-batches.
//
// The blocks are split into P v contiguous chunks (P stages, v virtual stages
// a rank), chunk c on rank c % P. A micro-batch's forward through a chunk
// receives its state from the previous chunk's rank (the first chunk reads the
// input), steps through the chunk's blocks keeping each step's graph, and
// sends the result on (the last chunk seeds the adjoint with the loss). Its
// backward receives the adjoint from the next chunk's rank, steps back through
// the blocks accumulating their gradients and freeing each graph
// (GraphUse::release), and sends the adjoint back. Consecutive chunks on one
// rank (P = 1) share the boundary state: no message. With recompute, forwards
// keep no graph and each backward step recomputes its forward (activation
// checkpointing at every block). Frozen blocks (the first K) step forward
// only: the backward stops at block K. The schedules differ only in the order
// of these units on each rank.
#include <algorithm>
#include <functional>

#include "detail/data_parallel.hpp"
#include "detail/model_parallel.hpp"
#include "detail/freeze.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace plait::schedule {
namespace {

// Tags as the MGRIT emitter gives them: by space and level.
int tag_of(Space space) { return static_cast<int>(space) * 64; }

class StageEmitter {
 public:
  StageEmitter(const Program& program, int stage, bool recompute, std::vector<Op>& ops)
      : program_(program), stage_(stage), recompute_(recompute), ops_(ops),
        chunks_(static_cast<int>(program.partition.size()) - 1),
        bytes_(state_bytes(micro_batch_model(program))) {}

  // `local`: the rank's chunk, 0 .. virtual_stages - 1.
  void forward(int local, int micro) {
    const int chunk = global(local);
    const int first = program_.partition[chunk], end = program_.partition[chunk + 1];
    const Buffer start{Space::u, 0, first, micro};
    if (chunk == 0) ops_.push_back({.kind = OpKind::input, .dst = start});
    else if (rank_of(chunk - 1) != stage_) ops_.push_back(message(OpKind::recv, start, rank_of(chunk - 1)));
    for (int block = first; block < end; ++block)
      ops_.push_back({.kind = OpKind::step, .dst = {Space::u, 0, block + 1, micro}, .a = {Space::u, 0, block, micro},
                      .level = 0, .block = block, .span = 1,
                      .graph = recompute_ || block < frozen() ? GraphUse::none : GraphUse::keep});
    const Buffer out{Space::u, 0, end, micro};
    if (chunk + 1 == chunks_) ops_.push_back({.kind = OpKind::loss, .dst = {Space::w, 0, end, micro}, .a = out});
    else if (rank_of(chunk + 1) != stage_) ops_.push_back(message(OpKind::send, out, rank_of(chunk + 1)));
  }

  // The backward of a micro-batch through a chunk; `split`: its input-gradient
  // half only (the graphs stay kept for weights()).
  // The backward stops at the first trained block: none through a frozen chunk.
  void backward(int local, int micro, bool split = false) {
    const int chunk = global(local);
    const int first = std::max(program_.partition[chunk], frozen()), end = program_.partition[chunk + 1];
    if (first >= end) return;
    if (chunk + 1 < chunks_ && rank_of(chunk + 1) != stage_)
      ops_.push_back(message(OpKind::recv, {Space::w, 0, end, micro}, rank_of(chunk + 1)));
    for (int block = end - 1; block >= first; --block)
      ops_.push_back({.kind = OpKind::step_adjoint, .dst = {Space::w, 0, block, micro},
                      .a = {Space::w, 0, block + 1, micro}, .c = {Space::u, 0, block, micro}, .level = 0,
                      .block = block, .span = 1, .accumulate_grad = !split,
                      .graph = split ? GraphUse::none : recompute_ ? GraphUse::recompute : GraphUse::release});
    if (first > frozen() && chunk > 0 && rank_of(chunk - 1) != stage_)
      ops_.push_back(message(OpKind::send, {Space::w, 0, first, micro}, rank_of(chunk - 1)));
  }

  // A split backward's weight-gradient half: the kept graphs' parameter part, then freed.
  void weights(int local, int micro) {
    const int chunk = global(local);
    const int first = std::max(program_.partition[chunk], frozen());
    for (int block = program_.partition[chunk + 1] - 1; block >= first; --block)
      ops_.push_back({.kind = OpKind::step_weight, .a = {Space::w, 0, block + 1, micro},
                      .c = {Space::u, 0, block, micro}, .level = 0, .block = block, .span = 1,
                      .accumulate_grad = true, .graph = GraphUse::release});
  }

 private:
  int global(int local) const { return local * program_.ranks + stage_; }
  int rank_of(int chunk) const { return chunk % program_.ranks; }
  int frozen() const { return program_.frozen_blocks; }

  Op message(OpKind kind, const Buffer& buffer, int peer) const {
    Op op{.kind = kind, .peer = peer, .tag = tag_of(buffer.space), .bytes = bytes_};
    (kind == OpKind::send ? op.a : op.dst) = buffer;
    return op;
  }

  const Program& program_;
  int stage_;
  bool recompute_;
  std::vector<Op>& ops_;
  int chunks_;
  std::int64_t bytes_;
};

// `order(stage, emitter)` emits one stage's forwards and backwards in its order.
Program build_pipeline(const BuildSpec& spec, const std::string& kind,
                       const std::function<void(const Program&, int, StageEmitter&)>& order) {
  if (spec.layers < 1 || spec.layers > max_layers)
    throw Error("layers", "must be in 1.." + std::to_string(max_layers));
  if (spec.ranks < 1) throw Error("stages", "must be >= 1");
  const std::int32_t virtual_stages = spec.virtual_stages;
  if (virtual_stages < 1 || virtual_stages > max_layers) throw Error("virtual-stages", "must be >= 1");
  if (spec.recompute && kind == "zb-h1")
    throw Error("recompute", "zb-h1 splits the backward on kept graphs: it does not recompute");
  if (virtual_stages > 1 && kind != "1f1b-interleaved")
    throw Error("virtual-stages", "only the interleaved 1F1B (1f1b-interleaved) splits a stage, not " + kind);
  if (std::int64_t{spec.ranks} * virtual_stages > spec.layers)
    throw Error("stages", std::to_string(spec.ranks) + " stages" +
                              (virtual_stages > 1 ? " x " + std::to_string(virtual_stages) + " virtual stages" : "") +
                              " but only " + std::to_string(spec.layers) +
                              " layers: every stage needs at least one layer");
  check_model(spec.model);
  if (spec.frozen_blocks < 0 || spec.frozen_blocks >= spec.layers)
    throw Error("frozen", std::to_string(spec.frozen_blocks) + " frozen blocks of " + std::to_string(spec.layers) +
                              ": must be in 0.." + std::to_string(spec.layers - 1) + " (one block at least trains)");
  const std::int32_t micro = spec.micro_batches;
  if (micro < 1 || micro > max_micro_batches)
    throw Error("micro-batches", "must be in 1.." + std::to_string(max_micro_batches));
  if (micro > 1 && spec.model.kind != "transformer")
    throw Error("micro-batches", "a " + spec.model.kind + " model has no batch to split");
  if (spec.model.batch % micro != 0)
    throw Error("micro-batches", std::to_string(micro) + " does not divide the batch of " +
                                     std::to_string(spec.model.batch));
  Program program;
  program.kind = kind;
  program.layers = spec.layers;
  program.ranks = spec.ranks;
  program.micro_batches = micro;
  program.virtual_stages = virtual_stages;
  const PhaseSpec sweep{.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  program.forward = program.adjoint = sweep;
  program.model = spec.model;
  program.work = work_table(micro_batch_model(program));
  program.frozen_blocks = spec.frozen_blocks;
  program.partition = detail::balanced_partition(spec.layers, spec.ranks * virtual_stages, spec.frozen_blocks);
  program.rank_programs.resize(spec.ranks);
  for (int stage = 0; stage < spec.ranks; ++stage) {
    Section section{.name = kind, .phase = Phase::none, .iteration = false, .repeat = 1, .ops = {}};
    StageEmitter emitter(program, stage, spec.recompute, section.ops);
    order(program, stage, emitter);
    program.rank_programs[stage].sections.push_back(std::move(section));
  }
  return program;
}

}  // namespace

Program build_gpipe(const BuildSpec& spec) {
  if (spec.zero_stage != 0) return detail::sharded(spec, build_gpipe);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_gpipe);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_gpipe);
  return build_pipeline(spec, "gpipe", [](const Program& program, int, StageEmitter& out) {
    for (int micro = 0; micro < program.micro_batches; ++micro) out.forward(0, micro);
    for (int micro = 0; micro < program.micro_batches; ++micro) out.backward(0, micro);
  });
}

Program build_1f1b(const BuildSpec& spec) {
  if (spec.zero_stage != 0) return detail::sharded(spec, build_1f1b);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_1f1b);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_1f1b);
  return build_pipeline(spec, "1f1b", [](const Program& program, int stage, StageEmitter& out) {
    const int micro_batches = program.micro_batches;
    const int warmup = std::min(program.ranks - stage - 1, micro_batches);
    for (int micro = 0; micro < warmup; ++micro) out.forward(0, micro);
    for (int micro = 0; micro + warmup < micro_batches; ++micro) {
      out.forward(0, micro + warmup);
      out.backward(0, micro);
    }
    for (int micro = micro_batches - warmup; micro < micro_batches; ++micro) out.backward(0, micro);
  });
}

// Megatron's interleaved schedule: a rank's k-th forward unit runs chunk
// (k / P) % v on micro-batch (k / (P v)) P + k % P (P micro-batches through
// one chunk, then the next chunk), its k-th backward the chunks in reverse;
// rank s warms up with (P - s - 1) 2 + (v - 1) P forwards (all of them when
// M = P), then alternates, then drains.
Program build_1f1b_interleaved(const BuildSpec& spec) {
  if (spec.zero_stage != 0) return detail::sharded(spec, build_1f1b_interleaved);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_1f1b_interleaved);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_1f1b_interleaved);
  if (spec.ranks > 0 && spec.micro_batches % spec.ranks != 0)
    throw Error("micro-batches", std::to_string(spec.micro_batches) + " is not a multiple of the " +
                                     std::to_string(spec.ranks) + " stages (interleaved 1F1B runs them P at a time)");
  return build_pipeline(spec, "1f1b-interleaved", [](const Program& program, int stage, StageEmitter& out) {
    const int stages = program.ranks, chunks = program.virtual_stages;
    const int total = chunks * program.micro_batches;
    const auto micro_of = [&](int k) { return k / (stages * chunks) * stages + k % stages; };
    const auto forward_chunk = [&](int k) { return k / stages % chunks; };
    const auto backward_chunk = [&](int k) { return chunks - 1 - k / stages % chunks; };
    const int warmup = program.micro_batches == stages ? total
                                                       : std::min((stages - stage - 1) * 2 + (chunks - 1) * stages, total);
    for (int k = 0; k < warmup; ++k) out.forward(forward_chunk(k), micro_of(k));
    for (int k = 0; k + warmup < total; ++k) {
      out.forward(forward_chunk(k + warmup), micro_of(k + warmup));
      out.backward(backward_chunk(k), micro_of(k));
    }
    for (int k = total - warmup; k < total; ++k) out.backward(backward_chunk(k), micro_of(k));
  });
}

namespace {

// Zero-bubble H1's order on stage s of P: P - s - 1 forwards (F), then s
// forwards each followed by an input-gradient half (B) whose weight half (W)
// waits, then F B W per micro-batch, then B W, then the s waiting W's. A
// stage holds at most P micro-batches' activations (1F1B's first stage), and
// with F, B and W of equal cost the bubble is P - 1 units, a third of 1F1B's.
enum class Unit : std::uint8_t { forward, input_gradient, weight_gradient };

std::vector<std::pair<Unit, int>> zero_bubble_order(int stages, int stage, int micro_batches) {
  std::vector<std::pair<Unit, int>> order;
  int forwards = 0, backwards = 0, weights = 0;
  const auto run = [&](Unit unit) {
    int& count = unit == Unit::forward ? forwards : unit == Unit::input_gradient ? backwards : weights;
    order.emplace_back(unit, count++);
  };
  for (int i = 0; i < stages - stage - 1 && forwards < micro_batches; ++i) run(Unit::forward);
  for (int i = 0; i < stage && forwards < micro_batches; ++i) {
    run(Unit::forward);
    run(Unit::input_gradient);
  }
  while (forwards < micro_batches) {
    run(Unit::forward);
    run(Unit::input_gradient);
    run(Unit::weight_gradient);
  }
  while (backwards < micro_batches) {
    run(Unit::input_gradient);
    run(Unit::weight_gradient);
  }
  while (weights < micro_batches) run(Unit::weight_gradient);
  return order;
}

}  // namespace

Program build_zb_h1(const BuildSpec& spec) {
  if (spec.zero_stage != 0) return detail::sharded(spec, build_zb_h1);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_zb_h1);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_zb_h1);
  return build_pipeline(spec, "zb-h1", [](const Program& program, int stage, StageEmitter& out) {
    for (const auto& [unit, micro] : zero_bubble_order(program.ranks, stage, program.micro_batches)) {
      if (unit == Unit::forward) out.forward(0, micro);
      else if (unit == Unit::input_gradient) out.backward(0, micro, true);
      else out.weights(0, micro);
    }
  });
}

const std::vector<std::string>& pipeline_kinds() {
  static const std::vector<std::string> kinds = {"gpipe", "1f1b", "1f1b-interleaved", "zb-h1"};
  return kinds;
}

std::string pipeline_kind_list() {
  std::string list;
  for (const std::string& kind : pipeline_kinds()) list += (list.empty() ? "" : ", ") + kind;
  return list;
}

bool is_pipeline_kind(const std::string& kind) {
  return std::find(pipeline_kinds().begin(), pipeline_kinds().end(), kind) != pipeline_kinds().end();
}

Program build_kind(const std::string& kind, const BuildSpec& spec) {
  if (spec.repack) return build_kind(kind, repacked(spec));
  if (spec.ends_on_first_rank && is_pipeline_kind(kind))
    throw Error("ends", "a pipeline runs the loss on its last stage: only mgrit and serial put the ends on the first "
                        "rank (TorchBraid's layout)");
  if (kind == "mgrit") return build_mgrit(spec);
  if (kind == "serial") return build_serial(spec);
  if (kind == "gpipe") return build_gpipe(spec);
  if (kind == "1f1b") return build_1f1b(spec);
  if (kind == "1f1b-interleaved") return build_1f1b_interleaved(spec);
  if (kind == "zb-h1") return build_zb_h1(spec);
  throw Error("kind", "unknown kind \"" + kind + "\" (mgrit, serial, " + pipeline_kind_list() + ")");
}

}  // namespace plait::schedule
