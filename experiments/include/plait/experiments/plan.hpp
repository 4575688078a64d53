// `plait plan`: the splits of one model over given GPU counts, searched over
// every schedule kind, sized and ranked. Each candidate is priced by a fast
// estimate (costmodels::StepEstimator, a timed dry run of one shard per
// replica, on Programs of a few micro-batches extrapolated to the step's);
// the best are then simulated with SimGrid (`plait simulate`, in parallel
// child processes). MGRIT candidates carry a gradient error measured on a
// small proxy of the model's depth (plan_gradient_error.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace plait::experiments {

struct PlannedModel {
  std::string name;  // "gpt3-175b", or "custom"
  int layers = 0, d_model = 0, heads = 0, seq = 0, vocab = 0;
  std::string description;
};

// GPT-2 and GPT-3 sizes, Llama-2-70B's shape (as a GPT block: MLP 4x, no GQA).
const std::vector<PlannedModel>& named_models();
// Throws plait::Error naming the models for an unknown name.
const PlannedModel& find_model(const std::string& name);

// What the plan needs of a platform (the app reads it with the simulator):
// nodes of devices, their links, a device's sheet and memory.
struct PlanPlatform {
  std::string name;            // given to `plait simulate --platform`
  int devices_per_node = 1;
  std::string device_sheet;    // costmodels::device_sheet name
  double device_memory_bytes = 0;
  double intra_latency_s = 0, intra_bytes_per_s = 0, allreduce_pass_bytes_per_s = 0;
  double inter_latency_s = 0, inter_bytes_per_s = 0;  // a node's link into the network (0: one node only)
  // A platform whose collectives across nodes are hierarchical (a fitted
  // cluster): they, and messages between nodes, take costmodels/cluster_links.hpp.
  bool hierarchical_collectives = false;
  double inter_collective_overhead_s = 0;
};

struct PlanRequest {
  PlannedModel model;
  int global_batch = 0;
  std::vector<int> gpus;           // each count planned separately
  PlanPlatform platform;
  std::string profile;             // the fitted GPU profile (docs/gpu/*.json)
  std::vector<std::string> kinds;  // mgrit, gpipe, 1f1b, 1f1b-interleaved, zb-h1
  double max_grad_error = 1e-2;    // MGRIT candidates above it are refused
  double memory_fraction = 0.9;    // of a device's memory a candidate may use
  int frozen_blocks = 0;           // the first K blocks frozen (pipelines; MGRIT solves over every block)
  // What else is searched: ZeRO stages (with dp > 1; 3 with FSDP's prefetch),
  // sequence parallelism beside tp > 1 as well as without, selective
  // recompute beside none and full. The defaults search what plan always did.
  std::vector<int> zero_stages{0};
  bool sequence_parallel = false;
  bool selective_recompute = false;
  int top = 1;                     // the best of each GPU count simulated with SimGrid (0: none)
  int jobs = 1;                    // threads estimating, and simulations at a time
  std::optional<double> host_overhead_s;  // replaces the profile's per-kernel host overhead
  std::string plait_binary;        // for the simulations
  std::string output_dir;          // programs and simulation logs ("" : a temporary one)
};

struct Candidate {
  int gpus = 0;
  std::string kind;
  int tp = 1, pp = 1, dp = 1;
  int micro_batch = 1;       // samples a micro-batch (MGRIT: a gradient-accumulation round)
  int virtual_stages = 1;    // interleaved
  bool recompute = false;            // full activation recompute
  bool selective_recompute = false;  // attention's core only
  bool sequence_parallel = false;    // beside tp > 1
  int zero = 0;                      // ZeRO stage over the dp replicas (3: FSDP, with prefetch)
  int levels = 0, cf = 0, fwd_iters = 0, bwd_iters = 0;  // MGRIT
  double estimated_s = 0;                 // the fast estimate of the step
  double gradient_sum_s = 0;              // its replicas' gradient sum (the ring's closed form)
  std::optional<double> simulated_s;      // SimGrid's, for the best
  std::int64_t memory_bytes = 0;          // the fullest rank's estimate
  double device_memory_bytes = 0;
  double grad_error = 0;                  // relative, MGRIT's; exact kinds 0
  double grad_error_spread = 0;           // max - min over the proxy's seeds
  std::string refused;                    // why it was left out ("" : kept)

  double step_s() const { return simulated_s ? *simulated_s : estimated_s; }
  std::string label() const;  // "1f1b tp8 pp8 dp1 mb1 v2 rc", "... sp sel z1"
};

struct PlanResult {
  std::vector<Candidate> kept;     // ranked per GPU count, fastest first
  std::vector<Candidate> refused;  // with their reasons
  int searched = 0;
  double seconds = 0;
  double model_flops_per_step = 0;  // 6 N tokens + attention, for TFLOP/s and MFU
  double peak_flops = 0;            // a device's, in the model's dtype
  double host_overhead_s = 0;       // the per-kernel host overhead priced
  // The kept candidates estimated again with a lean stack's host overhead
  // (a few us: CUDA graphs, fused kernels), ranked; empty when the priced one is as lean.
  double lean_host_overhead_s = 0;
  std::vector<Candidate> lean;
  double tokens_per_step = 0;
};

// Progress: (done, total, what).
using PlanProgress = std::function<void(std::size_t, std::size_t, const std::string&)>;

// Throws plait::Error on a bad request (no GPUs, a batch that no split divides,
// an unknown kind, platform or profile).
PlanResult plan(const PlanRequest& request, const PlanProgress& progress = {});

// plan.csv: one row per candidate, kept then refused; read back by parse_plan_csv.
std::string plan_csv(const PlanResult& result);
std::vector<Candidate> parse_plan_csv(const std::string& text, const std::string& origin);
std::string plan_json(const PlanResult& result);
std::string plan_table(const PlanResult& result, int rows_per_gpu_count);
// report.md and its plots in `dir`; returns the files written.
std::vector<std::string> write_plan_report(const std::string& dir, const PlanRequest& request,
                                           const PlanResult& result);

}  // namespace plait::experiments
