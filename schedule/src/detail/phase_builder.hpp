// One MGRIT phase's solve (init, relaxation, restriction, coarse solves,
// corrections, norms) emitted on the Emitter by the MGRIT and serial builders.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "emitter.hpp"
#include "grid.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule::detail {

inline const Buffer tmp0{Space::tmp, 0, 0}, tmp1{Space::tmp, 0, 1}, norm_register{Space::reg, 0, 0};

// Which forward steps keep their autograd graph for the adjoint: one flag per
// fine block (the forward step from u[0][block]), and a per-rank allowance
// from the memory budget (-1: no limit).
struct KeptGraphs {
  std::vector<char> by_block;
  std::vector<std::int64_t> allowance;
};

// Emits one phase's solve (init, iterations) on the Emitter.
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

}  // namespace plait::schedule::detail
