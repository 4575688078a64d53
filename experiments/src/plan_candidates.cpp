// The search space of `plait plan`: named model shapes and every split of a
// GPU count into tensor, pipeline and data parallelism, micro-batches and
// each kind's settings.
#include <algorithm>
#include <cstdio>

#include "detail/plan.hpp"
#include "plait/schedule/error.hpp"

namespace plait::experiments {

const std::vector<PlannedModel>& named_models() {
  static const std::vector<PlannedModel> models = {
      {"gpt2-small", 12, 768, 12, 1024, 50257, "GPT-2 124M"},
      {"gpt2-medium", 24, 1024, 16, 1024, 50257, "GPT-2 355M"},
      {"gpt2-large", 36, 1280, 20, 1024, 50257, "GPT-2 774M"},
      {"gpt2-xl", 48, 1600, 25, 1024, 50257, "GPT-2 1.5B"},
      {"gpt3-1.3b", 24, 2048, 16, 2048, 51200, "GPT-3 1.3B (16 heads of 128, as Megatron-LM runs it)"},
      {"gpt3-2.7b", 32, 2560, 32, 2048, 51200, "GPT-3 2.7B"},
      {"gpt3-6.7b", 32, 4096, 32, 2048, 51200, "GPT-3 6.7B"},
      {"gpt3-13b", 40, 5120, 40, 2048, 51200, "GPT-3 13B (width 5120 as Megatron-LM runs it)"},
      {"gpt3-175b", 96, 12288, 96, 2048, 51200, "GPT-3 175B"},
      {"llama2-70b-like", 80, 8192, 64, 4096, 32000,
       "Llama-2-70B's depth, width, heads and context as GPT blocks (MLP 4x, no grouped-query attention)"},
      {"megatron-530b", 105, 20480, 128, 2048, 51200, "Megatron-Turing NLG 530B"},
  };
  return models;
}

const PlannedModel& find_model(const std::string& name) {
  std::string names;
  for (const PlannedModel& model : named_models()) {
    if (model.name == name) return model;
    names += (names.empty() ? "" : ", ") + model.name;
  }
  throw Error("--model " + name, "unknown model (gpt with --layers, --d-model, --heads, --seq, --vocab, or one of " +
                                     names + ")");
}

std::string Candidate::label() const {
  char text[160];
  if (kind == "mgrit")
    std::snprintf(text, sizeof text, "mgrit tp%d pp%d dp%d mb%d L%d cf%d it%d/%d", tp, pp, dp, micro_batch, levels, cf,
                  fwd_iters, bwd_iters);
  else
    std::snprintf(text, sizeof text, "%s tp%d pp%d dp%d mb%d%s%s%s", kind.c_str(), tp, pp, dp, micro_batch,
                  virtual_stages > 1 ? (" v" + std::to_string(virtual_stages)).c_str() : "", recompute ? " rc" : "",
                  selective_recompute ? " sel" : "");
  std::string out = text;
  if (sequence_parallel) out += " sp";
  if (zero > 0) out += " z" + std::to_string(zero);
  return out;
}

namespace detail {
namespace {

std::vector<int> divisors(int n) {
  std::vector<int> out;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(d);
  return out;
}

bool wanted(const PlanRequest& request, const std::string& kind) {
  return std::find(request.kinds.begin(), request.kinds.end(), kind) != request.kinds.end();
}

}  // namespace

// The candidate again with each ZeRO stage and sequence parallelism searched
// (both only where they apply: dp > 1, tp > 1).
void add_variants(const PlanRequest& request, const Candidate& candidate, std::vector<Candidate>& out) {
  for (const int zero : request.zero_stages) {
    if (zero > 0 && candidate.dp < 2) continue;
    for (const bool sequence_parallel : {false, true}) {
      if (sequence_parallel && (!request.sequence_parallel || candidate.tp < 2)) continue;
      Candidate variant = candidate;
      variant.zero = zero, variant.sequence_parallel = sequence_parallel;
      out.push_back(variant);
    }
  }
}

std::vector<Candidate> enumerate_candidates(const PlanRequest& request, int gpus) {
  const PlannedModel& model = request.model;
  std::vector<Candidate> out;
  for (const int tp : divisors(gpus)) {
    if (tp > request.platform.devices_per_node || model.heads % tp != 0) continue;
    for (const int pp : divisors(gpus / tp)) {
      if (pp > model.layers) continue;
      const int dp = gpus / (tp * pp);
      if (request.global_batch % dp != 0) continue;
      const int replica_batch = request.global_batch / dp;
      for (int micro = 1; micro <= std::min(replica_batch, 64); micro *= 2) {
        if (replica_batch % micro != 0) continue;
        const int micro_batches = replica_batch / micro;
        Candidate base;
        base.gpus = gpus, base.tp = tp, base.pp = pp, base.dp = dp, base.micro_batch = micro;
        for (const std::string kind : {"gpipe", "1f1b", "zb-h1", "1f1b-interleaved"}) {
          if (!wanted(request, kind)) continue;
          const bool interleaved = kind == "1f1b-interleaved";
          if (interleaved && (pp < 2 || micro_batches % pp != 0)) continue;
          if (!interleaved && pp == 1 && kind != "1f1b") continue;  // one stage: the kinds are the same step
          for (const int v : interleaved ? std::vector<int>{2, 3, 4} : std::vector<int>{1}) {
            if (pp * v > model.layers) continue;
            for (const std::string recompute : {"none", "full", "selective"}) {
              if (recompute == "full" && kind == "zb-h1") continue;  // it splits the backward on kept graphs
              if (recompute == "selective" && !request.selective_recompute) continue;
              Candidate candidate = base;
              candidate.kind = kind, candidate.virtual_stages = v;
              candidate.recompute = recompute == "full", candidate.selective_recompute = recompute == "selective";
              add_variants(request, candidate, out);
            }
          }
        }
        // MGRIT over pp ranks; each accumulation round solves one micro-batch.
        if (!wanted(request, "mgrit") || pp < 2) continue;
        for (const int levels : {2, 3})
          for (const int cf : {2, 4}) {
            int coarsest = model.layers;
            for (int l = 1; l < levels; ++l) coarsest /= cf;
            if (coarsest < pp) continue;  // every rank keeps a coarse point
            for (const int fwd_iters : {1, 2, 4})
              for (const int bwd_iters : {1, 2}) {
                Candidate candidate = base;
                candidate.kind = "mgrit", candidate.levels = levels, candidate.cf = cf;
                candidate.fwd_iters = fwd_iters, candidate.bwd_iters = bwd_iters;
                add_variants(request, candidate, out);
              }
          }
      }
    }
  }
  return out;
}

int step_micro_batches(const PlanRequest& request, const Candidate& candidate) {
  return request.global_batch / (candidate.dp * candidate.micro_batch);
}

std::pair<int, int> probe_micro_batches(const PlanRequest& request, const Candidate& candidate) {
  const int m = step_micro_batches(request, candidate);
  if (candidate.kind == "mgrit") return {1, 1};  // rounds repeat the same solve
  // Multiples of the stages past the point where one more micro-batch adds a
  // fixed time and memory (checked against whole Programs by the tests): 1F1B
  // and ZB-H1 from P, GPipe from 4 P (messages held while its stages drift
  // apart), interleaved from (3 + v) P (its warm-up spans (v + 1) P chunks).
  const int from = candidate.kind == "1f1b-interleaved" ? 3 + candidate.virtual_stages
                   : candidate.kind == "gpipe"          ? 4
                                                        : 1;
  const int first = from * candidate.pp, second = first + candidate.pp;
  if (m <= second) return {m, m};
  return {first, second};
}

double extrapolate(std::pair<int, int> probes, double at_first, double at_second, int m) {
  if (probes.first == probes.second) return at_first;
  return at_first + (at_second - at_first) * double(m - probes.first) / double(probes.second - probes.first);
}

schedule::BuildSpec candidate_spec(const PlanRequest& request, const Candidate& candidate, int micro_batches,
                                   int replicas) {
  schedule::BuildSpec spec;
  spec.layers = request.model.layers;
  spec.ranks = candidate.pp;
  spec.replicas = replicas;
  const bool mgrit = candidate.kind == "mgrit";
  spec.micro_batches = mgrit ? 1 : micro_batches;
  spec.virtual_stages = candidate.virtual_stages;
  spec.recompute = candidate.recompute;
  spec.zero_stage = candidate.zero;
  spec.prefetch = candidate.zero == 3;
  spec.frozen_blocks = request.frozen_blocks;  // MGRIT refuses it when building
  spec.forward = {.levels = candidate.levels, .coarsening_factor = candidate.cf, .iterations = candidate.fwd_iters};
  spec.adjoint = {.levels = candidate.levels, .coarsening_factor = candidate.cf, .iterations = candidate.bwd_iters};
  spec.model.d_model = request.model.d_model;
  spec.model.heads = request.model.heads;
  spec.model.seq = request.model.seq;
  spec.model.batch = candidate.micro_batch * spec.micro_batches * replicas;
  spec.model.dtype = "fp16";
  spec.model.causal = true;
  spec.model.tensor_parallel = candidate.tp;
  spec.model.sequence_parallel = candidate.sequence_parallel;
  spec.model.selective_recompute = candidate.selective_recompute;
  spec.model.vocab = costmodels::megatron_padded_vocab(request.model.vocab, candidate.tp);
  return spec;
}

}  // namespace detail
}  // namespace plait::experiments
