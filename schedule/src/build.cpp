// Builders: serial and MGRIT Programs.
//
// The emitter writes every rank's ops in one global order that is itself a
// valid sequential execution (each recv after its send), so the Program cannot
// deadlock; sweeps send boundary values before computing so ranks overlap.
#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include "detail/grid.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

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
class PhaseBuilder {
 public:
  PhaseBuilder(Emitter& emitter, const Grid& grid) : out_(emitter), grid_(grid) {}

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

  // Level-0 F- then C-relaxation accumulating parameter gradients: every block once.
  void emit_gradient_relaxation() {
    sweep(0, targets(0, false), true);
    sweep(0, targets(0, true), true);
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
    if (grid_.adjoint) op.c = Buffer{Space::u, 0, op.block};
    return op;
  }

  // Updates the targets (ascending point indices of `level`) from their
  // predecessors. Values the sweep does not change are sent first, so ranks
  // relax concurrently; a predecessor the sweep itself updates (an interval
  // spread over ranks, the coarsest level) is sent once its owner computed
  // it, so that part of the sweep pipelines.
  void sweep(int level, const std::vector<int>& targets, bool gradient) {
    std::vector<char> is_target(grid_.size(level), 0);
    for (int k : targets) is_target[k] = 1;
    std::vector<std::vector<Op>> by_rank(grid_.rank_order.size());
    for (int k : targets) {
      const Op op = step(level, k, state(level, k), state(level, k - 1), true, gradient);
      const int rank = grid_.owner_of(level, k);
      if (!is_target[k - 1]) out_.fetch_inputs(rank, op);
      by_rank[rank].push_back(op);
    }
    for (int rank : grid_.rank_order) {
      for (const Op& op : by_rank[rank]) {
        out_.fetch_inputs(rank, op);
        out_.emit(rank, op);
      }
    }
  }

  void relax(int level) {
    sweep(level, targets(level, false), false);
    if (grid_.spec.relax == Relax::FCF) {
      sweep(level, targets(level, true), false);
      sweep(level, targets(level, false), false);
    }
  }

  // FAS restriction by injection: u_c[m] = u[k], g_c[m] = Phi(u[k-1]) + g[k] -
  // Phi_c(u_c[m-1]), residual Phi(u[k-1]) + g[k] - u[k]. The fine step runs
  // where its block is, the coarse step where the coarse block is. With `skip`
  // (the first down-cycle) the coarse level starts from the injected values
  // with a zero right-hand side.
  void restrict_to(int level, bool skip) {
    const int coarse = level + 1;
    const bool with_norm = level == 0 && !skip;
    const auto& fine_index = grid_.fine_index[coarse];
    const auto emit = [&](int rank, const Op& op) {
      out_.fetch_inputs(rank, op);
      out_.emit(rank, op);
    };
    if (with_norm) {
      for (int rank : grid_.rank_order) out_.emit(rank, {.kind = OpKind::zero, .dst = norm_register});
    }
    if (!skip) {
      for (int m = 1; m < grid_.size(coarse); ++m) {  // inputs first, so no rank waits inside the loop
        out_.fetch_inputs(grid_.owner_of(level, fine_index[m]),
                          step(level, fine_index[m], tmp0, state(level, fine_index[m] - 1), true, false));
      }
      for (int m = 1; m < grid_.size(coarse); ++m) {
        const int k = fine_index[m], rank = grid_.owner_of(level, k);
        emit(rank, step(level, k, restricted(coarse, m), state(level, k - 1), true, false));
        if (with_norm) {
          emit(rank, {.kind = OpKind::sub, .dst = tmp1, .a = restricted(coarse, m), .b = state(level, k)});
          emit(rank, {.kind = OpKind::norm_sq, .dst = norm_register, .a = tmp1});
        }
      }
    }
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
    if (!skip) relax(level);
    restrict_to(level, skip);
    cycle(level + 1, first);
    correct_from(level);
    sweep(level, targets(level, false), false);  // F-relaxation interpolates
  }

  Emitter& out_;
  const Grid& grid_;
};

void check_phase(const PhaseSpec& phase, const char* name) {
  const std::string where = name;
  if (phase.levels < 1) throw Error(where + ".levels", "must be >= 1");
  if (phase.levels > 1 && phase.coarsening_factor < 2) throw Error(where + ".cf", "must be >= 2");
  if (phase.iterations < 1) throw Error(where + ".iterations", "must be >= 1");
  if (phase.levels > 24) throw Error(where + ".levels", "must be <= 24");
}

Program build(const BuildSpec& spec, const std::string& kind) {
  if (spec.layers < 1) throw Error("layers", "must be >= 1");
  if (spec.ranks < 1) throw Error("ranks", "must be >= 1");
  if (spec.layers > (1 << 24)) throw Error("layers", "must be <= 16777216");
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
  PhaseBuilder forward_builder(out, forward);
  PhaseBuilder adjoint_builder(out, adjoint);
  const int last = spec.ranks - 1;

  const auto emit_phase = [&](PhaseBuilder& builder, const Grid& grid, Phase phase,
                              const std::string& name) {
    const PhaseSpec& settings = grid.spec;
    if (settings.levels == 1) {  // a sequential sweep is exact: one pass
      out.begin_section(name + ".sweep", phase, false, 1);
      builder.emit_sweep_all(0, phase == Phase::adjoint);
      return;
    }
    out.begin_section(name + ".first_iteration", phase, true, 1);
    builder.emit_iteration(true);
    if (settings.iterations > 1) {
      out.begin_section(name + ".iteration", phase, true, settings.iterations - 1);
      builder.emit_iteration(false);
    }
    if (phase == Phase::adjoint) {
      out.begin_section(name + ".gradient", phase, false, 1);
      builder.emit_gradient_relaxation();
    }
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

Program build_serial(const BuildSpec& spec) {
  BuildSpec serial = spec;
  serial.forward = {.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  serial.adjoint = serial.forward;
  serial.tolerance = 0;
  return build(serial, "serial");
}

Program build_mgrit(const BuildSpec& spec) { return build(spec, "mgrit"); }

}  // namespace plait::schedule
