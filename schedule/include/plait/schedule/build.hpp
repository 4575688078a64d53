// Builders: compile a description into a Program.
#pragma once

#include <string>
#include <vector>

#include "plait/schedule/program.hpp"

namespace plait::schedule {

struct BuildSpec {
  std::int32_t layers = 16;
  std::int32_t ranks = 1;
  PhaseSpec forward;
  PhaseSpec adjoint{.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  double tolerance = 0;  // > 0: iterations become a maximum, stop below tolerance
  ModelDesc model;
  // > 0: each rank keeps forward graphs for the adjoint only while its
  // estimated memory (memory.hpp) stays within this many bytes; the adjoint
  // recomputes the rest. Throws plait::Error when a rank does not fit even so.
  std::int64_t memory_budget_bytes = 0;
  // Pipelines: the batch is split into this many micro-batches (it must divide it).
  std::int32_t micro_batches = 1;
  // Data parallelism: this many replicas of the `ranks`-rank layout (ranks x
  // replicas ranks in all), each on batch / replicas samples, their gradients
  // summed at the end of the step. MGRIT and the pipelines take it.
  std::int32_t replicas = 1;
  // With replicas: sum the gradients in buckets of about bucket_bytes, each
  // right after the step that finishes its blocks' gradients, overlapped with
  // the rest of the backward (PyTorch DDP's default bucket: 25 MiB).
  bool dp_overlap = false;
  std::int64_t bucket_bytes = std::int64_t{25} << 20;
  // Sharded data parallelism (ZeRO; FSDP is stage 3), with replicas >= 2:
  // 1 shards the optimizer state (each replica updates 1 / replicas of the
  // parameters, then all-gathers them), 2 also the gradients (reduce-scattered,
  // not all-reduced), 3 also the parameters (all-gathered before every block
  // step, its gradients reduce-scattered as its backward ends). 0: none.
  std::int32_t zero_stage = 0;
  // Stage 3: each block's all-gather issued one block step early, overlapped
  // with that step (FSDP's forward and backward prefetch).
  bool prefetch = false;
  // With replicas: write only the first replica's rank programs (`ranks` and
  // `replicas` still count them all; the others would run the same ops).
  // Enough for what reads one replica (estimate_memory's first_replica_only,
  // costmodels::StepEstimator) at 1 / replicas of the cost; not a Program to
  // save, validate or simulate.
  bool first_replica_only = false;
  // With replicas: sum the gradients as TorchBraid's data_parallel does, one
  // blocking all-reduce per parameter tensor of the rank's blocks (and ends)
  // after its backward (Op::per_tensor); not with dp_overlap.
  bool dp_per_tensor = false;
  // MGRIT and serial: the input and loss ops on the first rank of each replica
  // (TorchBraid's open and close layers; Program::ends_on_first_rank).
  bool ends_on_first_rank = false;
  // Interleaved 1F1B: chunks of blocks each stage holds (the model in ranks x
  // virtual_stages chunks, chunk c on stage c % ranks).
  std::int32_t virtual_stages = 1;
  // Activation checkpointing: forward steps keep no graph; each backward step
  // recomputes its forward first (pipelines; MGRIT keeps no graph at all).
  bool recompute = false;
  // Pipelines: blocks [0, frozen_blocks) are frozen (forward only, no graph,
  // gradient or all-reduce); stages are balanced by work, not blocks.
  std::int32_t frozen_blocks = 0;
  // With frozen blocks, build_kind re-packs as PipeTransformer does: the fewest
  // stages (a divisor of ranks) holding no more work each than an unfrozen
  // stage, the freed devices as more replicas (ranks x replicas kept).
  bool repack = false;
};

// Plain forward sweep, loss, adjoint sweep with gradients (one level each),
// pipelined over spec.ranks. The denominator of every speedup.
Program build_serial(const BuildSpec& spec);

// MGRIT forward solve, loss, MGRIT adjoint solve, final gradient relaxation.
// Throws plait::Error on invalid settings (levels < 1, cf < 2, too many ranks, ...).
Program build_mgrit(const BuildSpec& spec);

// Pipeline schedules over spec.ranks stages (contiguous blocks, spread as
// evenly as the depth allows) and spec.micro_batches micro-batches; the
// phases' settings are ignored. GPipe: every stage runs the forwards of all
// micro-batches, then their backwards. 1F1B (PipeDream-flush, Megatron's
// default): stage s runs P - s - 1 forwards, then alternates one forward and
// one backward, then the remaining backwards; it holds at most P - s
// micro-batches' activations where GPipe holds M. Throws plait::Error on bad
// settings (stages > layers, micro-batches not dividing the batch).
Program build_gpipe(const BuildSpec& spec);
Program build_1f1b(const BuildSpec& spec);
// Megatron's interleaved 1F1B: spec.virtual_stages chunks a stage, the
// bubble (P - 1) / (v M + P - 1); micro-batches must be a multiple of the stages.
Program build_1f1b_interleaved(const BuildSpec& spec);
// Zero-bubble H1 (Qi et al. 2023): 1F1B's memory, each backward split into its
// input-gradient half (on the critical path) and its weight-gradient half
// (step_weight), which fills the bubbles: about a third of 1F1B's bubble when
// the three halves cost the same.
Program build_zb_h1(const BuildSpec& spec);

// The spec re-packed as PipeTransformer does once blocks are frozen: its
// stages cut to the fewest (a divisor of them) whose work each is at most an
// unfrozen stage's (a frozen block a third of a trained one), the freed
// devices as more replicas (ranks x replicas kept); unchanged (but for repack,
// cleared) when nothing is frozen, nothing can be freed, or the batch does not
// split over the replicas and micro-batches.
BuildSpec repacked(const BuildSpec& spec);

// The pipeline kinds, in the order help and errors list them: gpipe, 1f1b,
// 1f1b-interleaved, zb-h1 (ranks are stages; they split the batch).
const std::vector<std::string>& pipeline_kinds();
std::string pipeline_kind_list();  // "gpipe, 1f1b, 1f1b-interleaved, zb-h1"
bool is_pipeline_kind(const std::string& kind);
// The builder of a Program kind: mgrit, serial or a pipeline kind; throws
// plait::Error naming the kinds for another.
Program build_kind(const std::string& kind, const BuildSpec& spec);

}  // namespace plait::schedule
