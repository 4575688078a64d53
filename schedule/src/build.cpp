// Builders: serial and MGRIT Programs.
//
// The emitter writes every rank's ops in one global order that is itself a
// valid sequential execution (each recv after its send), so the Program cannot
// deadlock; sweeps send boundary values before computing so ranks overlap.
#include <algorithm>
#include <numeric>
#include <utility>
#include <stdexcept>
#include <unordered_map>

#include "detail/data_parallel.hpp"
#include "detail/grid.hpp"
#include "detail/model_parallel.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule {
namespace detail {

Grid make_grid(int layers, const PhaseSpec& spec, bool adjoint,
               const std::vector<std::int32_t>& partition) {
  Grid grid;
  grid.layers = layers;
  grid.adjoint = adjoint;
  grid.spec = spec;
  // Level l's points are the forward points k*cf^l (and, in the adjoint, the
  // start point N); the last interval may be shorter.
  std::int64_t stride = 1;
  for (int level = 0; level < spec.levels; ++level) {
    std::vector<int> points;
    for (std::int64_t forward = 0; forward <= layers; forward += stride) {
      points.push_back(adjoint ? layers - static_cast<int>(forward) : static_cast<int>(forward));
    }
    if (adjoint && points.back() != 0) points.push_back(0);
    std::sort(points.begin(), points.end());
    grid.points.push_back(std::move(points));
    stride *= spec.coarsening_factor;
  }
  for (int level = 0; level < spec.levels; ++level) {
    const auto& fine = level > 0 ? grid.points[level - 1] : grid.points[0];
    std::vector<int> index(grid.points[level].size());
    std::size_t j = 0;
    for (std::size_t k = 0; k < index.size(); ++k) {
      while (fine[j] != grid.points[level][k]) ++j;
      index[k] = static_cast<int>(j);
    }
    grid.fine_index.push_back(std::move(index));
  }
  for (int level = 0; level < spec.levels; ++level) {
    std::vector<char> c_point(grid.points[level].size(), 0);
    if (level + 1 < spec.levels) {
      for (int k : grid.fine_index[level + 1]) c_point[k] = 1;
    }
    grid.is_c_point.push_back(std::move(c_point));
  }
  const int ranks = static_cast<int>(partition.size()) - 1;
  grid.block_owner.assign(layers, 0);
  for (int rank = 0; rank < ranks; ++rank) {
    for (int block = partition[rank]; block < partition[rank + 1]; ++block) grid.block_owner[block] = rank;
    grid.rank_order.push_back(adjoint ? ranks - 1 - rank : rank);
  }
  return grid;
}

}  // namespace detail

namespace {

using detail::Grid;

// Ranks split the blocks into contiguous ranges cut at multiples of the
// largest grid stride (common to both phases) that still leaves every rank a
// range: at the coarsest stride no coarse interval straddles two ranks, so
// relaxation needs one neighbour value per sweep; with more ranks than coarsest
// intervals, coarse levels live on fewer ranks and their sweeps pipeline
// across the ranks of an interval, as in XBraid.
std::vector<std::int32_t> make_partition(const BuildSpec& spec) {
  if (spec.ranks > spec.layers) {
    throw Error("ranks", std::to_string(spec.ranks) + " ranks but only " + std::to_string(spec.layers) +
                             " layers: every rank needs at least one layer");
  }
  const auto stride = [](const PhaseSpec& phase, int level) {
    std::int64_t out = 1;
    for (int l = 0; l < std::min(level, phase.levels - 1); ++l) out *= phase.coarsening_factor;
    return out;
  };
  std::int64_t unit = 1;
  for (int level = std::max(spec.forward.levels, spec.adjoint.levels) - 1; level >= 0; --level) {
    unit = std::lcm(stride(spec.forward, level), stride(spec.adjoint, level));
    if ((spec.layers + unit - 1) / unit >= spec.ranks) break;
  }
  const std::int64_t units = (spec.layers + unit - 1) / unit;
  std::vector<std::int32_t> partition{0};
  for (int rank = 0; rank < spec.ranks; ++rank) {
    const std::int64_t end_unit = units * (rank + 1) / spec.ranks;
    partition.push_back(static_cast<std::int32_t>(std::min<std::int64_t>(end_unit * unit, spec.layers)));
  }
  return partition;
}

class Emitter {
 public:
  explicit Emitter(Program& program) : program_(program), bytes_(state_bytes(program.model)) {
    program_.rank_programs.assign(program.ranks, {});
  }

  void begin_section(const std::string& name, Phase phase, bool iteration, int repeat) {
    for (auto& rank : program_.rank_programs) {
      rank.sections.push_back({name, phase, iteration, repeat, {}});
    }
    ghosts_.clear();  // a repeated body must fetch what it reads from others each time
  }

  // Drops the section just begun when nothing was emitted into it.
  void end_empty_section() {
    for (auto& rank : program_.rank_programs) {
      if (!rank.sections.back().ops.empty()) return;
    }
    for (auto& rank : program_.rank_programs) rank.sections.pop_back();
  }

  void emit(int rank, const Op& op) {
    program_.rank_programs[rank].sections.back().ops.push_back(op);
    if (op.dst.empty() || op.dst.space == Space::tmp || op.dst.space == Space::reg) return;
    auto& record = written_[key(op.dst)];
    record.version += 1;
    record.rank = rank;  // each named buffer has one writer
  }

  // Makes `buffer` readable on `rank`: a message from its writer unless the
  // rank already holds the current version (a ghost copy).
  void fetch(int rank, const Buffer& buffer) {
    if (buffer.empty() || buffer.space == Space::tmp || buffer.space == Space::reg) return;
    const auto found = written_.find(key(buffer));
    if (found == written_.end()) throw std::logic_error("builder reads unwritten " + to_string(buffer));
    const auto [version, owner] = found->second;
    if (rank == owner) return;
    auto [ghost, inserted] = ghosts_.try_emplace(key(buffer, rank), -1);
    if (!inserted && ghost->second == version) return;
    ghost->second = version;
    const int tag = static_cast<int>(buffer.space) * 64 + buffer.level;
    program_.rank_programs[owner].sections.back().ops.push_back(
        {.kind = OpKind::send, .a = buffer, .peer = rank, .tag = tag, .bytes = bytes_});
    program_.rank_programs[rank].sections.back().ops.push_back(
        {.kind = OpKind::recv, .dst = buffer, .peer = owner, .tag = tag, .bytes = bytes_});
  }

  void fetch_inputs(int rank, const Op& op) {
    for (const Buffer* input : {&op.a, &op.b, &op.c}) fetch(rank, *input);
  }

 private:
  struct Written {
    int version = 0;
    int rank = -1;
  };
  static std::uint64_t key(const Buffer& b, int rank = -1) {
    return (std::uint64_t(rank + 1) << 40) | (std::uint64_t(b.space) << 36) |
           (std::uint64_t(b.level) << 30) | std::uint64_t(b.point);
  }

  Program& program_;
  std::int64_t bytes_;
  std::unordered_map<std::uint64_t, Written> written_;
  std::unordered_map<std::uint64_t, int> ghosts_;
};

const Buffer tmp0{Space::tmp, 0, 0}, tmp1{Space::tmp, 0, 1}, norm_register{Space::reg, 0, 0};

// Emits one phase's solve (init, iterations) on the Emitter.
// Which forward steps keep their autograd graph for the adjoint: one flag per
// fine block (the forward step from u[0][block]), and a per-rank allowance
// from the memory budget (-1: no limit).
struct KeptGraphs {
  std::vector<char> by_block;
  std::vector<std::int64_t> allowance;
};

class PhaseBuilder {
 public:
  PhaseBuilder(Emitter& emitter, const Grid& grid, KeptGraphs& graphs)
      : out_(emitter), grid_(grid), graphs_(graphs) {}

  // While on, fine forward steps keep their graphs: from F-points only (the
  // last relaxation, whose C-points the correction changes after it), or from
  // every point (a final sweep, a serial sweep).
  enum class Keep { none, from_f_points, from_all_points };
  void keep_graphs(Keep keep) { keep_ = keep; }

  Buffer state(int level, int k) const { return named(grid_.adjoint ? Space::w : Space::u, level, k); }
  Buffer rhs(int level, int k) const { return named(grid_.adjoint ? Space::gw : Space::g, level, k); }
  // Phi(u[k-1]) + g[k] of the finer level, at coarse point k: where the FAS
  // right-hand side and the residual start.
  Buffer restricted(int level, int k) const { return named(Space::v, level, k); }

  // Zero guess at every owned point but the initial condition.
  void emit_init() {
    for (int k = 1; k < grid_.size(0); ++k) {
      out_.emit(grid_.owner_of(0, k), {.kind = OpKind::zero, .dst = state(0, k)});
    }
  }

  void emit_iteration(bool first) {
    cycle(0, first);
    if (grid_.levels() > 1 && !(first && grid_.spec.skip_first_down_relax)) {
      for (int rank : grid_.rank_order) {
        out_.emit(rank, {.kind = OpKind::allreduce, .dst = norm_register, .bytes = 8});
      }
      for (int rank : grid_.rank_order) {
        out_.emit(rank, {.kind = OpKind::record_norm, .a = norm_register});
      }
    }
  }

  // The adjoint's last fine relaxation, after its last correction: F- then
  // C-relaxation accumulating parameter gradients, every block once.
  void emit_gradient_relaxation() {
    sweep(0, targets(0, false), true);
    sweep(0, targets(0, true), true);
  }

  // The forward's fine F-points hold the last relaxation's values (XBraid's
  // stored F-points) unless `all_f_points`: then every F-point is recomputed
  // from the final C-points (no fine relaxation happened, or final_relax).
  // Otherwise only the F-points after the last C-point, when the output N is
  // one of them. These steps keep their graphs.
  bool emit_final_forward(bool all_f_points) {
    std::vector<int> stale = targets(0, false);
    if (!all_f_points) {
      stale.erase(stale.begin(), std::lower_bound(stale.begin(), stale.end(), last_fine_c_point()));
    }
    if (stale.empty()) return false;
    keep_graphs(Keep::from_all_points);
    sweep(0, stale, false);
    keep_graphs(Keep::none);
    return true;
  }

  void emit_sweep_all(int level, bool gradient) {
    std::vector<int> all(grid_.size(level) - 1);
    std::iota(all.begin(), all.end(), 1);
    sweep(level, all, gradient);
  }

 private:
  Buffer named(Space space, int level, int k) const {
    return {space, level, grid_.forward_point(grid_.points[level][k])};
  }

  std::vector<int> targets(int level, bool c_points) const {
    std::vector<int> out;
    for (int k = 1; k < grid_.size(level); ++k) {
      if (bool(grid_.is_c_point[level][k]) == c_points) out.push_back(k);
    }
    return out;
  }

  // The step reaching point k of `level`, from the value in `source`.
  Op step(int level, int k, const Buffer& destination, const Buffer& source, bool with_rhs,
          bool gradient) const {
    Op op{.kind = grid_.adjoint ? OpKind::step_adjoint : OpKind::step,
          .dst = destination,
          .a = source,
          .level = level,
          .block = grid_.block(level, k),
          .span = grid_.span(level, k),
          .accumulate_grad = gradient};
    if (with_rhs && level > 0) op.b = rhs(level, k);
    if (grid_.adjoint) {
      op.c = Buffer{Space::u, 0, op.block};
      if (level != 0 || !graphs_.by_block[op.block]) op.graph = GraphUse::recompute;  // coarse: always
    }
    return op;
  }

  // Marks a fine forward step as keeping its graph, when the mode and the
  // rank's memory allowance let it.
  void maybe_keep(int k, Op& op) {
    if (grid_.adjoint || op.level != 0 || keep_ == Keep::none) return;
    if (keep_ == Keep::from_f_points && grid_.is_c_point[0][k - 1]) return;
    auto& allowance = graphs_.allowance[grid_.owner_of(0, k)];
    if (allowance == 0) return;
    if (allowance > 0) --allowance;
    op.graph = GraphUse::keep;
    graphs_.by_block[op.block] = 1;
  }

  // Index of the last C-point of the fine level (point 0 is always one).
  int last_fine_c_point() const {
    const auto& c_point = grid_.is_c_point[0];
    return grid_.size(0) - 1 - static_cast<int>(std::find(c_point.rbegin(), c_point.rend(), 1) - c_point.rbegin());
  }

  // One step of a sweep and the ops that follow it on the same rank (the
  // residual of a C-point step).
  struct SweepItem {
    int rank = 0;
    std::vector<Op> ops;  // ops.front() is the step
  };

  // Emits the items (ascending points of `level`). Values the sweep does not
  // rewrite are sent first, so ranks relax concurrently; a predecessor the
  // sweep itself rewrites (an interval spread over ranks, the coarsest level)
  // is sent once its owner computed it, so that part of the sweep pipelines.
  void emit_sweep(int level, const std::vector<SweepItem>& items) {
    std::vector<char> rewritten(grid_.size(level), 0);
    std::vector<std::vector<const SweepItem*>> by_rank(grid_.rank_order.size());
    for (const SweepItem& item : items) {
      const Op& step = item.ops.front();
      const int from = index_of(level, step.a);
      if (!rewritten[from]) out_.fetch_inputs(item.rank, step);
      if (step.dst.space == state(level, 0).space) rewritten[index_of(level, step.dst)] = 1;
      by_rank[item.rank].push_back(&item);
    }
    for (int rank : grid_.rank_order) {
      for (const SweepItem* item : by_rank[rank]) {
        for (const Op& op : item->ops) {
          out_.fetch_inputs(rank, op);
          out_.emit(rank, op);
        }
      }
    }
  }

  // Index on `level` of a state buffer of that level.
  int index_of(int level, const Buffer& buffer) const {
    const int s = grid_.adjoint ? grid_.layers - buffer.point : buffer.point;
    const auto& points = grid_.points[level];
    return static_cast<int>(std::lower_bound(points.begin(), points.end(), s) - points.begin());
  }

  // Updates the targets (ascending point indices of `level`) from their predecessors.
  void sweep(int level, const std::vector<int>& targets, bool gradient) {
    std::vector<SweepItem> items;
    items.reserve(targets.size());
    for (int k : targets) {
      Op op = step(level, k, state(level, k), state(level, k - 1), true, gradient);
      if (level == 0) maybe_keep(k, op);
      items.push_back({grid_.owner_of(level, k), {std::move(op)}});
    }
    emit_sweep(level, items);
  }

  // The last relaxation sweep before a restriction, as XBraid's FRestrict: each
  // interval's F-points, then the step into its C-point, computed once and
  // shared by relaxation, residual and restriction (it lands in v, the start of
  // the FAS right-hand side; the C-point itself keeps its value).
  void relax_and_restrict_steps(int level) {
    const int coarse = level + 1;
    const bool with_norm = level == 0;
    if (with_norm) {
      for (int rank : grid_.rank_order) out_.emit(rank, {.kind = OpKind::zero, .dst = norm_register});
    }
    std::vector<SweepItem> items;
    const int tail = level == 0 ? last_fine_c_point() : grid_.size(level);  // the final sweep redoes the tail
    int m = 0;
    for (int k = 1; k < grid_.size(level); ++k) {
      SweepItem item{grid_.owner_of(level, k), {}};
      const Buffer destination = grid_.is_c_point[level][k] ? restricted(coarse, ++m) : state(level, k);
      item.ops.push_back(step(level, k, destination, state(level, k - 1), true, false));
      if (level == 0 && k <= tail) maybe_keep(k, item.ops.front());
      if (grid_.is_c_point[level][k]) {
        if (with_norm) {
          item.ops.push_back({.kind = OpKind::sub, .dst = tmp1, .a = restricted(coarse, m), .b = state(level, k)});
          item.ops.push_back({.kind = OpKind::norm_sq, .dst = norm_register, .a = tmp1});
        }
      }
      items.push_back(std::move(item));
    }
    emit_sweep(level, items);
  }

  // Relaxation (F or FCF) ending in the shared F-and-C-step sweep.
  void relax_and_restrict(int level) {
    if (grid_.spec.relax == Relax::FCF) {
      const Keep keep = std::exchange(keep_, Keep::none);  // the last sweep rewrites these states
      sweep(level, targets(level, false), false);
      sweep(level, targets(level, true), false);
      keep_ = keep;
    }
    relax_and_restrict_steps(level);
  }

  // FAS restriction by injection: u_c[m] = u[k], g_c[m] = Phi(u[k-1]) + g[k] -
  // Phi_c(u_c[m-1]) (the fine step is in v already). With `skip` (the first
  // down-cycle) the coarse level starts from the injected values with a zero
  // right-hand side.
  void inject(int level, bool skip) {
    const int coarse = level + 1;
    const auto& fine_index = grid_.fine_index[coarse];
    const auto emit = [&](int rank, const Op& op) {
      out_.fetch_inputs(rank, op);
      out_.emit(rank, op);
    };
    emit(grid_.owner_of(coarse, 0), {.kind = OpKind::copy, .dst = state(coarse, 0), .a = state(level, 0)});
    for (int m = 1; m < grid_.size(coarse); ++m) {
      const int rank = grid_.owner_of(coarse, m);
      emit(rank, {.kind = OpKind::copy, .dst = state(coarse, m), .a = state(level, fine_index[m])});
      if (skip) {
        out_.emit(rank, {.kind = OpKind::zero, .dst = rhs(coarse, m)});
        continue;
      }
      emit(rank, step(coarse, m, tmp1, state(level, fine_index[m - 1]), false, false));
      emit(rank, {.kind = OpKind::sub, .dst = rhs(coarse, m), .a = restricted(coarse, m), .b = tmp1});
    }
  }

  // With injection, the FAS correction sets fine C-points to the coarse solution.
  void correct_from(int level) {
    const int coarse = level + 1;
    for (int m = 1; m < grid_.size(coarse); ++m) {
      const int k = grid_.fine_index[coarse][m], rank = grid_.owner_of(level, k);
      const Op op{.kind = OpKind::copy, .dst = state(level, k), .a = state(coarse, m)};
      out_.fetch_inputs(rank, op);
      out_.emit(rank, op);
    }
  }

  void cycle(int level, bool first) {
    if (level == grid_.levels() - 1) {
      emit_sweep_all(level, false);
      return;
    }
    const bool skip = first && grid_.spec.skip_first_down_relax;
    if (!skip) relax_and_restrict(level);
    inject(level, skip);
    cycle(level + 1, first);
    correct_from(level);
    // F-relaxation interpolates the correction to the F-points. On the fine
    // level the next relaxation (or the phase's final sweep) recomputes them,
    // so it is left out there.
    if (level > 0) sweep(level, targets(level, false), false);
  }

  Emitter& out_;
  const Grid& grid_;
  KeptGraphs& graphs_;
  Keep keep_ = Keep::none;
};

void check_phase(const PhaseSpec& phase, const char* name) {
  const std::string where = name;
  if (phase.levels < 1) throw Error(where + ".levels", "must be >= 1");
  if (phase.levels > 1 && phase.coarsening_factor < 2) throw Error(where + ".cf", "must be >= 2");
  if (phase.iterations < 1) throw Error(where + ".iterations", "must be >= 1");
  if (phase.levels > 24) throw Error(where + ".levels", "must be <= 24");
}

// `graph_allowance`: per rank, how many forward graphs it may keep (empty: no limit).
Program build(const BuildSpec& spec, const std::string& kind, std::vector<std::int64_t> graph_allowance = {}) {
  if (spec.layers < 1) throw Error("layers", "must be >= 1");
  if (spec.ranks < 1) throw Error("ranks", "must be >= 1");
  if (spec.layers > max_layers) throw Error("layers", "must be <= " + std::to_string(max_layers));
  if (spec.ranks > max_ranks) throw Error("ranks", "must be <= " + std::to_string(max_ranks));
  check_phase(spec.forward, "forward");
  check_phase(spec.adjoint, "adjoint");
  if (spec.tolerance < 0) throw Error("tolerance", "must be >= 0");
  check_model(spec.model);
  Program program;
  program.kind = kind;
  program.layers = spec.layers;
  program.ranks = spec.ranks;
  program.forward = spec.forward;
  program.adjoint = spec.adjoint;
  program.tolerance = spec.tolerance;
  program.model = spec.model;
  program.work = work_table(spec.model);
  program.partition = make_partition(spec);

  const Grid forward = detail::make_grid(spec.layers, spec.forward, false, program.partition);
  const Grid adjoint = detail::make_grid(spec.layers, spec.adjoint, true, program.partition);
  Emitter out(program);
  KeptGraphs graphs{std::vector<char>(spec.layers, 0), graph_allowance};
  graphs.allowance.resize(spec.ranks, -1);
  PhaseBuilder forward_builder(out, forward, graphs);
  PhaseBuilder adjoint_builder(out, adjoint, graphs);
  const int last = spec.ranks - 1;

  using Keep = PhaseBuilder::Keep;
  const auto emit_phase = [&](PhaseBuilder& builder, const Grid& grid, Phase phase,
                              const std::string& name) {
    const PhaseSpec& settings = grid.spec;
    if (settings.levels == 1) {  // a sequential sweep is exact: one pass
      out.begin_section(name + ".sweep", phase, false, 1);
      builder.keep_graphs(Keep::from_all_points);
      builder.emit_sweep_all(0, phase == Phase::adjoint);
      builder.keep_graphs(Keep::none);
      return;
    }
    // Graphs are kept only in the forward's last relaxation; with a fixed
    // count the last iteration is its own section so earlier ones keep none.
    const Keep last = phase == Phase::forward && !settings.final_relax ? Keep::from_f_points : Keep::none;
    const int iterations = settings.iterations;
    out.begin_section(name + ".first_iteration", phase, true, 1);
    builder.keep_graphs(iterations == 1 ? last : Keep::none);
    builder.emit_iteration(true);
    if (iterations > 1 && spec.tolerance > 0) {  // any repetition may be the last
      out.begin_section(name + ".iteration", phase, true, iterations - 1);
      builder.keep_graphs(last);
      builder.emit_iteration(false);
    } else if (iterations > 1) {
      if (iterations > 2) {
        out.begin_section(name + ".iteration", phase, true, iterations - 2);
        builder.keep_graphs(Keep::none);
        builder.emit_iteration(false);
      }
      out.begin_section(name + ".last_iteration", phase, true, 1);
      builder.keep_graphs(last);
      builder.emit_iteration(false);
    }
    builder.keep_graphs(Keep::none);
    if (phase == Phase::adjoint) {
      out.begin_section(name + ".gradient", phase, false, 1);
      builder.emit_gradient_relaxation();
      return;
    }
    out.begin_section(name + ".final", phase, false, 1);
    const bool fine_level_relaxed = iterations > 1 || !settings.skip_first_down_relax;
    if (!builder.emit_final_forward(!fine_level_relaxed || settings.final_relax)) out.end_empty_section();
  };

  out.begin_section("forward.init", Phase::forward, false, 1);
  out.emit(0, {.kind = OpKind::input, .dst = Buffer{Space::u, 0, 0}});
  forward_builder.emit_init();
  emit_phase(forward_builder, forward, Phase::forward, "forward");

  out.begin_section("adjoint.init", Phase::adjoint, false, 1);
  out.emit(last, {.kind = OpKind::loss, .dst = Buffer{Space::w, 0, spec.layers},
                  .a = Buffer{Space::u, 0, spec.layers}});
  adjoint_builder.emit_init();
  emit_phase(adjoint_builder, adjoint, Phase::adjoint, "adjoint");
  return program;
}

}  // namespace

// Builds once without a limit, then again with each rank's graph allowance.
Program build_within_budget(const BuildSpec& spec, const std::string& kind) {
  if (spec.recompute) return build(spec, kind, std::vector<std::int64_t>(std::size_t(std::max(spec.ranks, 0)), 0));
  Program program = build(spec, kind);
  if (spec.memory_budget_bytes <= 0) return program;
  const std::int64_t per_graph = graph_bytes(spec.model);
  if (per_graph == 0) return program;
  std::vector<std::int64_t> allowance;
  const auto memory = estimate_memory(program);
  for (int rank = 0; rank < spec.ranks; ++rank) {
    const std::int64_t without_graphs = memory[rank].total() - memory[rank].kept_graphs +
                                        (memory[rank].recompute == 0 ? per_graph : 0);
    if (without_graphs > spec.memory_budget_bytes) {
      throw Error("memory budget", "rank " + std::to_string(rank) + " needs " + format_bytes(double(without_graphs)) +
                                       " even recomputing every graph, over the budget of " +
                                       format_bytes(double(spec.memory_budget_bytes)));
    }
    allowance.push_back((spec.memory_budget_bytes - without_graphs) / per_graph);
  }
  return build(spec, kind, allowance);
}

namespace {

void check_nothing_frozen(const BuildSpec& spec, const std::string& kind) {
  if (spec.frozen_blocks != 0)
    throw Error("frozen", kind + " solves over every layer: only the pipelines (" + pipeline_kind_list() +
                              ") freeze blocks");
}

}  // namespace

Program build_serial(const BuildSpec& spec) {
  check_nothing_frozen(spec, "serial");
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_serial);
  BuildSpec serial = spec;
  serial.forward = {.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  serial.adjoint = serial.forward;
  serial.tolerance = 0;
  return build_within_budget(serial, "serial");
}

Program build_mgrit(const BuildSpec& spec) {
  check_nothing_frozen(spec, "mgrit");
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_mgrit);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_mgrit);
  return build_within_budget(spec, "mgrit");
}

}  // namespace plait::schedule
