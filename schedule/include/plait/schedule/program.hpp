// The schedule IR: a Program is, per rank, a list of sections of ops.
//
// Nothing in an op depends on data values, so one Program is valid for every
// backend (reference vectors, LibTorch tensors, SimGrid cost actors).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plait::schedule {

// Buffer spaces. `u` forward state, `g` forward FAS right-hand side, `w` adjoint
// state, `gw` adjoint right-hand side, `tmp` per-rank scratch, `reg` scalar
// register, `v` a fine step's value at a coarse point (start of restriction).
enum class Space : std::uint8_t { none, u, g, w, gw, tmp, reg, v };

// A buffer is named by space, level and fine-grid point index (forward order),
// e.g. u[1][8] is the level-1 forward state at fine point 8. tmp/reg use level 0.
// In a Program with micro-batches a state buffer also names one, u[0][8]@2:
// its tensor holds that micro-batch's batch / micro_batches samples.
struct Buffer {
  Space space = Space::none;
  std::int32_t level = 0;
  std::int32_t point = 0;
  std::int32_t micro = 0;  // micro-batch

  bool empty() const { return space == Space::none; }
  friend bool operator==(const Buffer&, const Buffer&) = default;
  friend auto operator<=>(const Buffer&, const Buffer&) = default;
};

std::string to_string(const Buffer& buffer);
// Parses "u[1][8]", "u[0][8]@2", "tmp[0]", "reg[0]"; throws plait::Error on bad text.
Buffer parse_buffer(const std::string& text);

enum class OpKind : std::uint8_t {
  input,         // dst = the network input (rank owning forward point 0)
  zero,          // dst = 0
  copy,          // dst = a
  sub,           // dst = a - b
  norm_sq,       // dst(reg) += ||a||^2
  step,          // dst = Phi(a) [+ b]; block, span, level
  step_adjoint,  // dst = J^T a [+ b], J the Jacobian of Phi at state c; grads if accumulate_grad
  loss,          // dst(w) = dJ/du at a (the loss seed of the adjoint)
  send,          // a -> peer
  recv,          // dst <- peer
  allreduce,     // dst(reg) = sum of dst(reg) over the ranks of this rank's replica
  record_norm,   // append sqrt(a(reg)) to this phase's residual history
  grad_allreduce,  // gradients of blocks [block, block + span) = their sum over the replicas
  step_weight,     // grads += the parameter part of J^T a at state c (a split backward's second half)
  // The optimizer step over the rank's trained parameters (a full training
  // step: model.vocab > 0); bytes = those parameters at the model's dtype
  // (with Program::zero_stage >= 1, the rank's 1 / replicas shard of them).
  update,
  // Sharded data parallelism (ZeRO / FSDP), over the same group as a
  // grad_allreduce; bytes = the whole buffer of blocks [block, block + span),
  // padded to a multiple of the replicas, each member's shard 1 / replicas of it:
  reduce_scatter,  // the blocks' gradients summed over the replicas, each keeping its shard
  all_gather,      // the blocks' parameters assembled from every replica's shard
};

std::string_view to_string(OpKind kind);
OpKind parse_op_kind(std::string_view text);  // throws plait::Error
bool is_communication(OpKind kind);
// allreduce, grad_allreduce, reduce_scatter, all_gather: every rank of a group takes part.
bool is_collective(OpKind kind);
// grad_allreduce, reduce_scatter, all_gather: over the replicas, on blocks [block, block + span).
bool is_replica_collective(OpKind kind);
bool is_block_step(OpKind kind);  // step, step_adjoint or step_weight: a block evaluation

// How a block step uses autograd graphs. A forward step may keep its graph for
// the adjoint step at the same state (only where the adjoint reads that state);
// an adjoint step uses that kept graph, or recomputes the forward step first
// (TorchBraid's way; always so on coarse levels), or uses it for the last time
// and frees it (`release`: a pipeline's backward of a micro-batch, so its
// activations are not held to the end of the step). A split backward (zero
// bubble) is a step_adjoint without gradients that leaves the graph kept, then
// a step_weight at the same state and adjoint that releases it. Backends
// without graphs ignore it.
enum class GraphUse : std::uint8_t { none, keep, recompute, release };
std::string_view to_string(GraphUse use);

struct Op {
  OpKind kind = OpKind::zero;
  Buffer dst, a, b, c;
  std::int32_t level = 0;   // grid level of a step
  std::int32_t block = -1;  // fine block whose parameters a step uses
  std::int32_t span = 0;    // fine steps covered: step size is span * h
  bool accumulate_grad = false;
  GraphUse graph = GraphUse::none;  // step: keep; step_adjoint: recompute (else use the kept graph)
  std::int32_t peer = -1;   // send/recv
  std::int32_t tag = 0;
  std::int64_t bytes = 0;   // message bytes
  // grad_allreduce, reduce_scatter: may run while the rank computes on (a
  // bucket of gradients summed once final, as DDP, FSDP and NCCL do), done by
  // the end of the rank's program. all_gather: a prefetch (FSDP), started
  // here on the communication stream; the next block step on its blocks waits for it.
  bool overlap = false;
  // grad_allreduce: summed as TorchBraid's data_parallel sums them, one
  // blocking all-reduce per parameter tensor in turn, each of its fp32 .grad
  // (autocast keeps gradients in fp32): bytes count 4 a parameter, and
  // gradient_tensor_elements gives the tensors. The sum is the same.
  bool per_tensor = false;

  friend bool operator==(const Op&, const Op&) = default;
};

// Cost key of an op: the name under which cost models price it (see cost_keys.hpp).
std::string_view cost_key(const Op& op);
// A step_adjoint with accumulate_grad or a step_weight: adds into its block's gradient.
bool adds_to_gradient(const Op& op);

enum class Phase : std::uint8_t { none, forward, adjoint };
std::string_view to_string(Phase phase);

// A section's ops run `repeat` times. An `iteration` section counts as MGRIT
// iterations of its phase; in tolerance mode the interpreter stops repeating
// (and skips later iteration sections of the phase) once the phase's last
// residual norm is below the tolerance.
struct Section {
  std::string name;
  Phase phase = Phase::none;
  bool iteration = false;
  std::int32_t repeat = 1;
  std::vector<Op> ops;

  friend bool operator==(const Section&, const Section&) = default;
};

struct RankProgram {
  std::vector<Section> sections;
  friend bool operator==(const RankProgram&, const RankProgram&) = default;
};

enum class Relax : std::uint8_t { F, FCF };
std::string_view to_string(Relax relax);
Relax parse_relax(std::string_view text);

// Solver settings of one phase (forward or adjoint).
struct PhaseSpec {
  std::int32_t levels = 2;
  std::int32_t coarsening_factor = 2;
  Relax relax = Relax::F;
  std::int32_t iterations = 2;
  bool skip_first_down_relax = true;  // XBraid's skip: no relaxation on the first down-cycle
  // Forward only: recompute every fine F-point from the final C-points after the
  // last iteration (more accurate gradients, N - N/cf more steps). Off, as in
  // XBraid with stored F-points, the adjoint reads the last relaxation's F-points.
  bool final_relax = false;

  friend bool operator==(const PhaseSpec&, const PhaseSpec&) = default;
};

// The model whose blocks are the steps. kind: "transformer" (executor),
// "linear" or "mlp" (reference test problems).
struct ModelDesc {
  std::string kind = "transformer";
  double tstop = 1.0;  // h = tstop / layers
  // transformer
  std::int32_t d_model = 256, heads = 4, seq = 128, batch = 8, mlp_ratio = 4;
  std::string dtype = "fp32";
  bool causal = true;  // causal attention mask (decoders); false: none (encoders, ViT)
  // Block weights: "normal" (N(0, 1/fan_in)), "pytorch" (TransformerEncoderLayer's
  // defaults: xavier in-projection, Linear's U(+-1/sqrt(fan_in)), zero attention
  // biases) or "depth-scaled" (pytorch, with MLP, value and output projections
  // scaled by 1/sqrt(log 2N), N the Program's layers; METHOD.md).
  std::string init = "normal";
  // A full GPT training step when > 0: token and position embeddings before
  // the first block, final LayerNorm, an output layer over this vocabulary and
  // the cross-entropy after the last, the optimizer step at the end (Adam,
  // fp32 master weights). 0: the block stack alone with a mean-squared loss.
  std::int32_t vocab = 0;
  // Megatron tensor parallelism: each block (and the vocabulary) split over
  // this many ranks, QKV and MLP-up by columns, the attention output and
  // MLP-down by rows, one activation all-reduce after each half of the block
  // forward, one per half in the backward (tensor_allreduces). Ranks are laid
  // out tensor-parallel first: rank r is shard r % T of pipeline rank r / T.
  std::int32_t tensor_parallel = 1;
  // TorchBraid's open and close layers around the ODE blocks of a full GPT
  // step (vocab > 0): this many transformer blocks after the embedding and as
  // many before the head, run serially (not part of the MGRIT solve) by the
  // ranks that run the input and loss ops; the executor does not run them.
  std::int32_t buffer_blocks = 0;
  // Megatron's sequence parallelism (with tensor_parallel > 1): the LayerNorms,
  // dropouts and residual adds run on 1 / T of the sequence, each activation
  // all-reduce becomes a reduce-scatter and an all-gather (the same ring
  // time), and those parts' activations are split over the shards too.
  bool sequence_parallel = false;
  // Selective activation recomputation (Korthikanti et al. 2022): a kept
  // forward graph omits attention's scores, softmax and dropout, which the
  // backward on that graph recomputes (full recomputation is the ops' GraphUse).
  bool selective_recompute = false;
  // reference problems
  double lambda = -1.0;
  std::string scheme = "forward-euler";  // linear: forward-euler | backward-euler
  std::int32_t width = 4;                // mlp state size
  std::uint64_t seed = 1;

  friend bool operator==(const ModelDesc&, const ModelDesc&) = default;
};

// Throws plait::Error naming the first bad field (kind, sizes, heads | d_model, dtype).
void check_model(const ModelDesc& model);

// Elements in one state vector and bytes of one state message.
std::int64_t state_elements(const ModelDesc& model);
std::int64_t state_bytes(const ModelDesc& model);

// Work of one op, by cost key: used by analytic cost models.
struct Work {
  double flops = 0;
  double bytes = 0;
  friend bool operator==(const Work&, const Work&) = default;
};
std::map<std::string, Work> work_table(const ModelDesc& model);

// Limits of what a Program may ask for; validation (and so loading) refuses
// more, naming the limit: they keep a bad file from asking for unbounded
// memory or time.
inline constexpr std::int32_t max_layers = 1 << 24;
inline constexpr std::int32_t max_ranks = 1 << 24;
inline constexpr std::int32_t max_repeat = 1000000;           // of one section
inline constexpr std::int64_t max_executed_ops = 1LL << 31;   // all ranks, repeats counted
inline constexpr double max_state_elements = 1099511627776.0;  // 2^40: batch * seq * d_model
inline constexpr std::int32_t max_mlp_width = 1 << 15;        // width^2 weights per block
inline constexpr std::int32_t max_micro_batches = 1 << 16;

struct Program {
  static constexpr int format_version = 1;
  std::string kind = "mgrit";  // mgrit | serial | gpipe | 1f1b
  std::int32_t layers = 0;
  std::int32_t ranks = 1;
  // The batch is split into this many micro-batches (pipelines); every op on a
  // state runs on one micro-batch (Buffer::micro) of model.batch / micro_batches.
  std::int32_t micro_batches = 1;
  // Data parallelism: the ranks are `replicas` copies of one layout of
  // ranks / replicas ranks. Rank r is position r % (ranks / replicas) of replica
  // r / (ranks / replicas); each replica runs batch / replicas samples and the
  // replicas' gradients are summed by grad_allreduce ops.
  std::int32_t replicas = 1;
  // Interleaved pipelines: each rank of a replica holds this many chunks of
  // blocks, chunk c on position c % (ranks / replicas).
  std::int32_t virtual_stages = 1;
  // Sharded data parallelism (ZeRO stage, with replicas > 1): 1 the optimizer
  // state (update ops update the rank's shard; an all_gather of the updated
  // parameters follows), 2 also the gradients (reduce_scatter, not
  // grad_allreduce), 3 also the parameters (each block step's all_gather). 0: none.
  std::int32_t zero_stage = 0;
  // Blocks [0, frozen_blocks) are frozen (PipeTransformer): forward steps only,
  // no kept graph, no gradients, no all-reduce of their weights.
  std::int32_t frozen_blocks = 0;
  // The input and loss ops (and a full step's embedding and head) both on the
  // first rank of each replica, as TorchBraid runs its open and close layers:
  // the last rank sends it the output state and gets the loss gradient back.
  // Off: the input on the rank of block 0, the loss on the rank of the last.
  bool ends_on_first_rank = false;
  PhaseSpec forward, adjoint;
  double tolerance = 0;  // > 0: tolerance mode (iterations are a maximum)
  ModelDesc model;
  // Chunk c holds blocks [partition[c], partition[c+1]); position p of every
  // replica owns chunks p, p + P, ... (P ranks a replica): one chunk a
  // position unless virtual_stages > 1.
  std::vector<std::int32_t> partition;
  std::map<std::string, Work> work;      // per cost key
  std::vector<RankProgram> rank_programs;

  double step_size() const { return model.tstop / layers; }
  friend bool operator==(const Program&, const Program&) = default;
};

// The model as each op of the Program sees it: its batch is one micro-batch of
// one replica. Cost models price ops at this shape; the serial baseline runs the whole batch.
ModelDesc micro_batch_model(const Program& program);

// Ranks of one replica, and where rank `rank` sits in the layout.
std::int32_t ranks_per_replica(const Program& program);
std::int32_t replica_of(const Program& program, int rank);
struct BlockRange {
  std::int32_t first = 0, end = 0;  // [first, end)
  friend bool operator==(const BlockRange&, const BlockRange&) = default;
};
// The chunks of blocks rank `rank` owns, in block order.
std::vector<BlockRange> owned_blocks(const Program& program, int rank);
// The same clipped to the trained (not frozen) blocks: those with gradients.
std::vector<BlockRange> trained_blocks(const Program& program, int rank);
// Which ends of a full step rank `rank` holds: the embedding (`first`) and
// the head (`last`); the same for the input and loss ops' placement.
struct EndsHeld {
  bool first = false, last = false;
};
EndsHeld ends_held(const Program& program, int rank);
// The ranks a collective op of `rank` spans, ascending: an allreduce (of a
// residual norm) its replica's ranks, a grad_allreduce the ranks at its
// position in every replica.
std::vector<int> collective_group(const Program& program, int rank, OpKind kind);
// The tensor-parallel group of `rank`: the model.tensor_parallel ranks
// holding shards of the same blocks, ascending.
std::vector<int> tensor_group(const Program& program, int rank);
// Activation all-reduces (each of one micro-batch state) in the tensor-parallel
// group that running `op` takes (0 when model.tensor_parallel is 1): a forward
// step 2, an adjoint step 2 (4 when it recomputes its forward), a step_weight
// 0; with a vocabulary, input (the vocabulary-parallel embedding) 1, loss (the
// output layer's input gradient) 1.
int tensor_allreduces(const Program& program, const Op& op);

// JSON form: {"format": "plait.program", "version": 1, ...}; see program_json.cpp.
void to_json(nlohmann::json& out, const Program& program);
void from_json(const nlohmann::json& in, Program& program);
void to_json(nlohmann::json& out, const ModelDesc& model);
void from_json(const nlohmann::json& in, ModelDesc& model);

std::string dump_program(const Program& program);
void save_program(const Program& program, const std::string& path);
// Parses and validates; errors name the file, rank, op index and reason.
Program parse_program(const std::string& text, const std::string& origin = "<string>");
Program load_program(const std::string& path);

}  // namespace plait::schedule
