// Builders: serial and MGRIT Programs, written through the Emitter
// (detail/emitter.hpp) on the grid of each phase (detail/grid.hpp); sweeps send
// boundary values before computing so ranks overlap.
#include <algorithm>
#include <string>
#include <vector>

#include "detail/data_parallel.hpp"
#include "detail/emitter.hpp"
#include "detail/grid.hpp"
#include "detail/model_parallel.hpp"
#include "detail/phase_builder.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule {
namespace {

using detail::Emitter;
using detail::Grid;
using detail::KeptGraphs;
using detail::PhaseBuilder;

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
  program.ends_on_first_rank = spec.ends_on_first_rank;
  program.model = spec.model;
  program.work = work_table(spec.model);
  program.partition = detail::make_partition(spec);

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
  // With the ends on the first rank the output state travels there, and the
  // loss gradient back when the adjoint's first step reads it.
  const Op loss{.kind = OpKind::loss, .dst = Buffer{Space::w, 0, spec.layers}, .a = Buffer{Space::u, 0, spec.layers}};
  const int loss_rank = spec.ends_on_first_rank ? 0 : last;
  out.fetch_inputs(loss_rank, loss);
  out.emit(loss_rank, loss);
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
  if (spec.zero_stage != 0) return detail::sharded(spec, build_serial);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_serial);
  BuildSpec serial = spec;
  serial.forward = {.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  serial.adjoint = serial.forward;
  serial.tolerance = 0;
  return build_within_budget(serial, "serial");
}

Program build_mgrit(const BuildSpec& spec) {
  check_nothing_frozen(spec, "mgrit");
  if (spec.zero_stage != 0) return detail::sharded(spec, build_mgrit);
  if (detail::needs_model_parallel(spec)) return detail::model_parallel(spec, build_mgrit);
  if (spec.replicas != 1) return detail::data_parallel(spec, build_mgrit);
  return build_within_budget(spec, "mgrit");
}

}  // namespace plait::schedule
