// `plait plan`: enumerate, estimate, filter, rank; then SimGrid on the best of
// each GPU count (child `plait simulate` processes, `jobs` at a time).
#include "plait/experiments/plan.hpp"

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/plan.hpp"
#include "plait/costmodels/analytic.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

constexpr double lean_host_overhead_s = 5e-6;
const std::set<std::string> plan_kinds = {"mgrit", "gpipe", "1f1b", "1f1b-interleaved", "zb-h1"};

void check_request(const PlanRequest& request) {
  const PlannedModel& model = request.model;
  if (model.layers < 1 || model.d_model < 1 || model.heads < 1 || model.seq < 1 || model.vocab < 1)
    throw Error("--model", "layers, width, heads, sequence and vocabulary must be positive");
  if (model.d_model % model.heads != 0)
    throw Error("--heads " + std::to_string(model.heads), "must divide --d-model " + std::to_string(model.d_model));
  if (request.global_batch < 1) throw Error("--global-batch", "must be positive");
  if (request.gpus.empty()) throw Error("--gpus", "give at least one GPU count");
  for (const int gpus : request.gpus)
    if (gpus < 1) throw Error("--gpus " + std::to_string(gpus), "a GPU count must be positive");
  if (request.kinds.empty()) throw Error("--kinds", "give at least one kind");
  for (const std::string& kind : request.kinds)
    if (!plan_kinds.count(kind))
      throw Error("--kinds " + kind, "unknown kind (mgrit, gpipe, 1f1b, 1f1b-interleaved, zb-h1 or all)");
  if (!(request.memory_fraction > 0 && request.memory_fraction <= 1))
    throw Error("--memory-fraction", "must be in (0, 1]");
  if (request.frozen_blocks < 0 || request.frozen_blocks >= model.layers)
    throw Error("--frozen " + std::to_string(request.frozen_blocks),
                "must be in 0.." + std::to_string(model.layers - 1) + " (the model's blocks less one)");
  if (request.platform.devices_per_node < 1) throw Error("--platform " + request.platform.name, "has no devices");
}

// 6 x parameters x tokens (forward and backward) plus attention's scores: the
// model's FLOPs, whatever a schedule recomputes (MFU's convention).
double model_flops(const PlanRequest& request) {
  const PlannedModel& m = request.model;
  const double tokens = double(request.global_batch) * m.seq, d = m.d_model;
  const double parameters = m.layers * 12.0 * d * d + double(m.vocab) * d;
  return 6 * parameters * tokens + m.layers * 6.0 * 2 * tokens * m.seq * d;
}

// One SimGrid figure: the candidate's whole layout (replicas and shards) at the
// probe micro-batches, extrapolated as the estimate is.
double simulate(const PlanRequest& request, const Candidate& candidate, const std::string& dir,
                const std::string& profile) {
  const std::pair<int, int> probes = detail::probe_micro_batches(request, candidate);
  double seconds[2]{};
  for (int i = 0; i < 2; ++i) {
    const int micro_batches = i == 0 ? probes.first : probes.second;
    if (i == 1 && probes.first == probes.second) {
      seconds[1] = seconds[0];
      break;
    }
    std::string name = candidate.label() + " m" + std::to_string(micro_batches);
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    const std::string program_path = dir + "/" + name + ".json";
    write_text_file(program_path, schedule::dump_program(schedule::build_kind(
                                                candidate.kind,
                                                detail::candidate_spec(request, candidate, micro_batches, candidate.dp))));
    const std::vector<std::string> argv = {request.plait_binary, "simulate", program_path, "--platform",
                                           request.platform.name, "--profile", profile, "--grow-nodes",
                                           "--ignore-memory", "--json"};
    const std::string out = dir + "/" + name + ".prediction.json";
    if (detail::run_process(argv, out, out + ".stderr") != 0)
      throw Error("simulate " + candidate.label(), detail::last_words(out + ".stderr"));
    std::ifstream file(out);
    const nlohmann::json prediction = nlohmann::json::parse(file, nullptr, false);
    if (!prediction.is_object() || !prediction.contains("predicted_time_s"))
      throw Error(out, "no predicted_time_s in plait simulate's output");
    seconds[i] = prediction.at("predicted_time_s").get<double>();
    fs::remove(program_path);  // programs of big layouts take gigabytes
  }
  const int micro_batches = detail::step_micro_batches(request, candidate);
  if (candidate.kind != "mgrit") return detail::extrapolate(probes, seconds[0], seconds[1], micro_batches);
  // Accumulation rounds: each round's solve, the gradient sum once (its
  // share priced by the estimate's closed form, as the round's simulation has it).
  return micro_batches * seconds[0] - (micro_batches - 1) * candidate.gradient_sum_s;
}

// work(i) for i in [0, count), on `jobs` threads taking the next index in turn.
void on_threads(int jobs, std::size_t count, const std::function<void(std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    for (std::size_t i; (i = next++) < count;) work(i);
  };
  std::vector<std::thread> workers;
  for (int j = 0; j < std::max(1, jobs); ++j) workers.emplace_back(worker);
  for (std::thread& thread : workers) thread.join();
}

void simulate_best(const PlanRequest& request, PlanResult& result, const std::string& profile,
                   const PlanProgress& progress) {
  std::vector<Candidate*> chosen;
  for (const int gpus : request.gpus) {
    int taken = 0;
    for (Candidate& candidate : result.kept)
      if (candidate.gpus == gpus && taken < request.top) chosen.push_back(&candidate), ++taken;
  }
  const std::string dir = request.output_dir + "/simulations";
  fs::create_directories(dir);
  std::atomic<std::size_t> finished{0};
  std::mutex failure_mutex;
  std::string failure;
  on_threads(request.jobs, chosen.size(), [&](std::size_t i) {
    try {
      chosen[i]->simulated_s = simulate(request, *chosen[i], dir, profile);
    } catch (const Error& error) {
      const std::lock_guard lock(failure_mutex);
      if (failure.empty()) failure = error.what();
    }
    if (progress) progress(++finished, chosen.size(), "simulated " + chosen[i]->label());
  });
  if (!failure.empty()) throw Error("plan", "a simulation failed: " + failure);
}

void rank_kept(std::vector<Candidate>& kept) {
  std::stable_sort(kept.begin(), kept.end(), [](const Candidate& x, const Candidate& y) {
    return x.gpus != y.gpus ? x.gpus < y.gpus : x.step_s() < y.step_s();
  });
}

}  // namespace

PlanResult plan(const PlanRequest& request, const PlanProgress& progress) {
  check_request(request);
  const auto start = std::chrono::steady_clock::now();
  costmodels::Profile profile = costmodels::load_profile(request.profile);
  if (request.host_overhead_s) profile.device.kernel_overhead_s = *request.host_overhead_s;
  PlanResult result;
  result.host_overhead_s = profile.device.kernel_overhead_s;
  result.peak_flops = costmodels::peak_flops(profile.device, "fp16");
  result.model_flops_per_step = model_flops(request);
  result.tokens_per_step = double(request.global_batch) * request.model.seq;

  std::vector<Candidate> candidates;
  for (const int gpus : request.gpus) {
    const std::vector<Candidate> split = detail::enumerate_candidates(request, gpus);
    if (split.empty())
      throw Error("--gpus " + std::to_string(gpus), "no split of " + std::to_string(gpus) +
                                                        " GPUs divides the global batch " +
                                                        std::to_string(request.global_batch) + " and the model");
    candidates.insert(candidates.end(), split.begin(), split.end());
  }
  result.searched = int(candidates.size());
  detail::PlanEstimator estimator(request, costmodels::make_profile_pricer(profile));
  detail::GradientErrors gradient_errors;
  // `jobs` threads share the estimator's cache of probes.
  std::atomic<std::size_t> finished{0};
  std::mutex progress_mutex;
  on_threads(request.jobs, candidates.size(), [&](std::size_t i) {
    Candidate& candidate = candidates[i];
    estimator.estimate(candidate);
    if (candidate.refused.empty() && candidate.kind == "mgrit") {
      const detail::GradientError error = gradient_errors.of(candidate, request.model.layers);
      candidate.grad_error = error.worst, candidate.grad_error_spread = error.spread;
      if (error.worst > request.max_grad_error)
        candidate.refused = "gradient error: " + std::to_string(error.worst) + " above --max-grad-error";
    }
    const std::size_t done = ++finished;
    if (progress && (done % 64 == 0 || done == candidates.size())) {
      const std::lock_guard lock(progress_mutex);
      progress(done, candidates.size(), "estimated");
    }
  });
  for (const Candidate& candidate : candidates)  // in the enumeration's order, whatever the threads'
    (candidate.refused.empty() ? result.kept : result.refused).push_back(candidate);
  rank_kept(result.kept);
  // How the ranking moves with the host's per-kernel cost (the fitted one is a
  // software stack's, not the GPU's): the kept splits priced again, memory and
  // gradient error unchanged.
  if (result.host_overhead_s > 2 * lean_host_overhead_s) {
    costmodels::Profile lean = profile;
    lean.device.kernel_overhead_s = result.lean_host_overhead_s = lean_host_overhead_s;
    detail::PlanEstimator lean_estimator(request, costmodels::make_profile_pricer(lean));
    for (Candidate candidate : result.kept) {
      lean_estimator.estimate(candidate);
      result.lean.push_back(candidate);
    }
    rank_kept(result.lean);
  }
  if (request.top > 0 && !result.kept.empty()) {
    fs::create_directories(request.output_dir);
    const std::string priced_profile = request.output_dir + "/profile.json";
    costmodels::save_profile(profile, priced_profile);  // with --host-overhead applied
    simulate_best(request, result, priced_profile, progress);
    rank_kept(result.kept);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace plait::experiments
