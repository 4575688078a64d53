// Builders: pipeline schedules (GPipe, 1F1B) over micro-batches.
//
// Stage s (rank s) owns a contiguous range of blocks. A micro-batch's forward
// on a stage receives its state from the stage before (the first stage reads
// the input), steps through the stage's blocks keeping each step's graph, and
// sends the result on (the last stage seeds the adjoint with the loss). Its
// backward receives the adjoint from the stage after, steps back through the
// blocks accumulating their gradients and freeing each graph (GraphUse::release),
// and sends the adjoint back. The schedules differ only in the order of these
// units on each stage.
#include <algorithm>
#include <functional>

#include "detail/data_parallel.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace plait::schedule {
namespace {

// Blocks spread as evenly as the depth allows: the first layers % stages
// stages hold one block more.
std::vector<std::int32_t> even_partition(std::int32_t layers, std::int32_t stages) {
  std::vector<std::int32_t> partition{0};
  for (std::int64_t stage = 1; stage <= stages; ++stage)
    partition.push_back(static_cast<std::int32_t>(stage * layers / stages));
  return partition;
}

// Tags as the MGRIT emitter gives them: by space and level.
int tag_of(Space space) { return static_cast<int>(space) * 64; }

class StageEmitter {
 public:
  StageEmitter(const Program& program, int stage, std::vector<Op>& ops)
      : program_(program), stage_(stage), ops_(ops),
        first_(program.partition[stage]), end_(program.partition[stage + 1]),
        bytes_(state_bytes(micro_batch_model(program))) {}

  void forward(int micro) {
    const Buffer start{Space::u, 0, first_, micro};
    if (stage_ == 0) ops_.push_back({.kind = OpKind::input, .dst = start});
    else ops_.push_back(message(OpKind::recv, start, stage_ - 1));
    for (int block = first_; block < end_; ++block)
      ops_.push_back({.kind = OpKind::step, .dst = {Space::u, 0, block + 1, micro}, .a = {Space::u, 0, block, micro},
                      .level = 0, .block = block, .span = 1, .graph = GraphUse::keep});
    const Buffer out{Space::u, 0, end_, micro};
    if (last_stage()) ops_.push_back({.kind = OpKind::loss, .dst = {Space::w, 0, end_, micro}, .a = out});
    else ops_.push_back(message(OpKind::send, out, stage_ + 1));
  }

  void backward(int micro) {
    if (!last_stage()) ops_.push_back(message(OpKind::recv, {Space::w, 0, end_, micro}, stage_ + 1));
    for (int block = end_ - 1; block >= first_; --block)
      ops_.push_back({.kind = OpKind::step_adjoint, .dst = {Space::w, 0, block, micro},
                      .a = {Space::w, 0, block + 1, micro}, .c = {Space::u, 0, block, micro}, .level = 0,
                      .block = block, .span = 1, .accumulate_grad = true, .graph = GraphUse::release});
    if (stage_ > 0) ops_.push_back(message(OpKind::send, {Space::w, 0, first_, micro}, stage_ - 1));
  }

 private:
  bool last_stage() const { return stage_ + 1 == program_.ranks; }

  Op message(OpKind kind, const Buffer& buffer, int peer) const {
    Op op{.kind = kind, .peer = peer, .tag = tag_of(buffer.space), .bytes = bytes_};
    (kind == OpKind::send ? op.a : op.dst) = buffer;
    return op;
  }

  const Program& program_;
  int stage_;
  std::vector<Op>& ops_;
  std::int32_t first_, end_;
  std::int64_t bytes_;
};

// `order(stage, emitter)` emits one stage's forwards and backwards in its order.
Program build_pipeline(const BuildSpec& spec, const std::string& kind,
                       const std::function<void(const Program&, int, StageEmitter&)>& order) {
  if (spec.layers < 1 || spec.layers > max_layers)
    throw Error("layers", "must be in 1.." + std::to_string(max_layers));
  if (spec.ranks < 1) throw Error("stages", "must be >= 1");
  if (spec.ranks > spec.layers)
    throw Error("stages", std::to_string(spec.ranks) + " stages but only " + std::to_string(spec.layers) +
                              " layers: every stage needs at least one layer");
  check_model(spec.model);
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
  const PhaseSpec sweep{.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  program.forward = program.adjoint = sweep;
  program.model = spec.model;
  program.work = work_table(micro_batch_model(program));
  program.partition = even_partition(spec.layers, spec.ranks);
  program.rank_programs.resize(spec.ranks);
  for (int stage = 0; stage < spec.ranks; ++stage) {
    Section section{.name = kind, .phase = Phase::none, .iteration = false, .repeat = 1, .ops = {}};
    StageEmitter emitter(program, stage, section.ops);
    order(program, stage, emitter);
    program.rank_programs[stage].sections.push_back(std::move(section));
  }
  return program;
}

}  // namespace

Program build_gpipe(const BuildSpec& spec) {
  if (spec.replicas != 1) return detail::data_parallel(spec, build_gpipe);
  return build_pipeline(spec, "gpipe", [](const Program& program, int, StageEmitter& out) {
    for (int micro = 0; micro < program.micro_batches; ++micro) out.forward(micro);
    for (int micro = 0; micro < program.micro_batches; ++micro) out.backward(micro);
  });
}

Program build_1f1b(const BuildSpec& spec) {
  if (spec.replicas != 1) return detail::data_parallel(spec, build_1f1b);
  return build_pipeline(spec, "1f1b", [](const Program& program, int stage, StageEmitter& out) {
    const int micro_batches = program.micro_batches;
    const int warmup = std::min(program.ranks - stage - 1, micro_batches);
    for (int micro = 0; micro < warmup; ++micro) out.forward(micro);
    for (int micro = 0; micro + warmup < micro_batches; ++micro) {
      out.forward(micro + warmup);
      out.backward(micro);
    }
    for (int micro = micro_batches - warmup; micro < micro_batches; ++micro) out.backward(micro);
  });
}

}  // namespace plait::schedule
