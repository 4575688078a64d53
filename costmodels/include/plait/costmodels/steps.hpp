// Measured training steps of whole iterations (Megatron GPT runs on GPUs),
// the Programs they ran, a fast estimate of a Program's step, and the GPU
// kernel model (DeviceSheet's efficiency, GEMM saturation, memory efficiency,
// kernel launch and message overheads) fitted to the steps: `plait calibrate --from-steps`.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plait/costmodels/allreduce_fit.hpp"
#include "plait/costmodels/cluster_links.hpp"
#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/build.hpp"

namespace plait::costmodels {

// One measured iteration: vTrain's columns "# GPUs", "global batch", "micro
// batch", "hidden size", "attention heads", "# layers", "sequence length",
// "tensor parallelism", "data parallelism", "pipeline parallelism",
// "iteration time (ms)" (matched by name; other columns ignored).
struct StepMeasurement {
  int line = 0;  // in its file, for messages
  int gpus = 0, global_batch = 0, micro_batch = 0, hidden = 0, heads = 0, layers = 0, seq = 0;
  int tp = 0, dp = 0, pp = 0;
  double seconds = 0;
  // Optional columns (absent: what the vTrain runs ran): "recompute" full |
  // selective | none, "sequence parallelism" yes | no, "ZeRO stage" 0-3
  // (1: Megatron's distributed optimizer).
  std::string recompute = "full";
  bool sequence_parallel = false;
  int zero = 0;
};

// Throws plait::Error "<origin>: line <n>, <column>: <reason>" for a bad row: a
// missing column or field, a value that is not a positive integer (a time not
// a positive number), TP x DP x PP not the GPUs, a global batch not split into
// whole micro-batches over the replicas, heads not dividing the hidden size or
// not divisible by TP; an optional column's value not one it takes, sequence
// parallelism without TP, a ZeRO stage without data parallelism; or for no rows.
std::vector<StepMeasurement> parse_step_csv(const std::string& text, const std::string& origin);
std::vector<StepMeasurement> load_step_csv(const std::string& path);

// What the measured runs ran (the data's README): Megatron GPT in fp16, pre-LN
// blocks, MLP 4x, causal attention, a vocabulary of `vocab` padded to a
// multiple of 128 x TP; 1F1B over PP stages of global / (micro x DP)
// micro-batches, DP replicas, full activation checkpointing, Adam; or the
// row's recompute, sequence parallelism and ZeRO stage where it has them.
schedule::BuildSpec megatron_step_spec(const StepMeasurement& step, int vocab = 50257);
// The vocabulary Megatron builds: padded to a multiple of 128 x TP.
int megatron_padded_vocab(int vocab, int tensor_parallel);
inline constexpr const char* megatron_step_kind = "1f1b";

// How a step's communication is priced: point-to-point messages by an
// alpha-beta model, collectives by the ring model of the node's links.
struct StepLinks {
  RingAllreduceModel ring;
  MessageModel messages;
  // The replicas' gradient sums when they cross nodes (plait plan); else `ring`.
  std::optional<RingAllreduceModel> gradient_ring;
  // Nodes of `devices_per_node` devices (rank r on device r): collectives whose
  // group crosses nodes are hierarchical, messages between nodes share the
  // node's NICs (cluster_links.hpp); `ring` and `messages` stay the node's own.
  // Set, it replaces gradient_ring.
  struct Cluster {
    int devices_per_node = 0;
    InterNodeLinks inter;
  };
  std::optional<Cluster> cluster;
};

// A Program's step time without SimGrid, for fits that price thousands of
// steps many times: a timed dry run of the ranks of one tensor-parallel shard
// of one replica (the others run the same ops in lockstep), compute ops at the
// pricer's prices (a block step plus its activation all-reduces; a send or
// recv the device's message overhead), messages by links.messages, every
// collective as links.ring prices it (a ZeRO reduce-scatter or all-gather
// half its all-reduce, as cluster_links.hpp's gather). An overlapped replica
// collective (Op::overlap) runs on the rank's communication stream, in issue
// order, while the rank computes on; a block step waits for its block's
// prefetched all-gathers, the step's end for the stream; a collective in
// place while the stream's are in flight shares their links (both late by
// the overlap). Contention between messages is not modelled otherwise:
// SimGrid's `plait simulate` is the full model.
class StepEstimator {
 public:
  explicit StepEstimator(schedule::Program program);
  double seconds(const OpPricer& pricer, const StepLinks& links) const;
  // What its ops are priced at: one micro-batch, tensor parallelism included.
  schedule::ModelDesc shape() const { return schedule::micro_batch_model(program_); }

 private:
  struct CompactOp {
    enum class Kind : std::uint8_t { compute, send, recv, collective, barrier } kind = Kind::compute;
    int price = -1;       // compute: index into priced_
    int peer = -1;        // send / recv: index of the peer among the ranks run
    int group = 1;        // collective: devices
    int members = -1;     // collective: index into groups_
    int tensor_allreduces = 0;
    std::int64_t bytes = 0;
    bool half = false;     // collective: a reduce-scatter or all-gather
    bool overlap = false;  // collective: on the rank's communication stream
    int block = -1;        // compute: a block step's block; all_gather: its first block
    int span = 0;          // all_gather: its blocks
  };
  schedule::Program program_;  // for the pricer: the settings, without rank programs
  std::vector<schedule::Op> priced_;
  std::vector<std::vector<CompactOp>> ranks_;
  std::vector<int> program_rank_;            // of each rank run
  std::vector<std::vector<int>> groups_;     // the collectives' devices (rank r on device r)
  std::vector<std::vector<int>> tensor_groups_;  // of each rank run
  bool prefetches_ = false;                      // overlapped all_gathers: block steps wait for them
};

// The GPU kernel model's fitted parameters, on top of a sheet's peak figures,
// and the per-shape factors fitted after them.
struct KernelFit {
  // efficiency, gemm_half_dim, memory_efficiency, kernel_overhead_s, message_overhead_s set
  DeviceSheet device;
  // One standard error of each, relative to it (efficiency, half dim, memory,
  // kernel launch, message overhead).
  std::array<double, 5> relative_uncertainty{};
  // Each micro-batch shape with enough rows: what the smooth model above
  // misses on its kernels (the model of shapes not among the steps).
  std::vector<ShapeFactors> shape_factors;
  double mean_abs_error = 0;         // on the rows fitted, with the shape factors
  double smooth_mean_abs_error = 0;  // the same without them
  int rows = 0;
  // The fitted model: the smooth one with the shape factors applied.
  std::unique_ptr<OpPricer> pricer() const {
    return make_analytic_pricer(device, shape_factors);
  }
};

// Least squares on log(predicted / measured) over the steps (Nelder-Mead on
// the log of each smooth parameter), estimators[i] pricing steps[i]; then,
// with those fixed, the block and ends factors of each micro-batch shape of
// at least 3 rows (Gauss-Newton on that shape's rows, each log factor with a
// normal prior of s.d. 0.5 around 0). Throws plait::Error with fewer steps
// than parameters (5).
KernelFit fit_kernel_model(const std::vector<StepMeasurement>& steps, const std::vector<StepEstimator>& estimators,
                           const DeviceSheet& sheet, const StepLinks& links);

// k-fold cross-validation: rows, or the micro-batch shapes with all their
// rows, dealt into `folds` folds (a fixed shuffle by `seed`), each fold
// predicted by the fit on the others. By shape, no held-out row's shape was
// fitted: the error of the smooth model on shapes it has not seen. Returns
// each row's held-out predicted seconds.
enum class FoldBy { row, shape };
std::vector<double> cross_validate(const std::vector<StepMeasurement>& steps,
                                   const std::vector<StepEstimator>& estimators, const DeviceSheet& sheet,
                                   const StepLinks& links, int folds = 5, FoldBy by = FoldBy::row, unsigned seed = 1);

// Held-out error of predicted seconds against the steps: mean |error|, max,
// and the same by TP, PP, DP, micro batch and GPUs.
struct ErrorSummary {
  std::string group;  // "all", "TP 2", ...
  int rows = 0;
  double mean_abs = 0, max_abs = 0;
};
std::vector<ErrorSummary> summarize_errors(const std::vector<StepMeasurement>& steps, const std::vector<double>& predicted);

// Each row's held-out predicted seconds, by the k-fold check by row and by shape.
struct HeldOut {
  std::vector<double> rows, shapes;
};

// Markdown: the fitted parameters with their uncertainty, the shape factors,
// the error tables of both checks, and the worst rows with their settings.
std::string format_step_fit(const std::vector<StepMeasurement>& steps, const HeldOut& held_out, const KernelFit& fit,
                            int folds, const std::string& origin);

}  // namespace plait::costmodels
