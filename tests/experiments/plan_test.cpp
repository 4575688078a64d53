// plait plan: the fast estimate against the whole Program and against SimGrid,
// MGRIT's gradient error, plan.csv and --json, and the request's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "../support/error_text.hpp"
#include "detail/plan.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/experiments/plan.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments {
namespace {

using plait::testing::error_of;

// A small GPT on the A100 cluster's figures (platforms/a100-cluster.json).
PlanRequest small_request(const std::string& dir) {
  PlanRequest request;
  request.model = {"small", 8, 512, 8, 256, 4096, ""};
  request.global_batch = 32;
  request.gpus = {8, 16};
  request.platform = {.name = "a100-cluster", .devices_per_node = 8, .device_sheet = "a100-80gb",
                      .device_memory_bytes = 80e9, .intra_latency_s = 8.07e-6, .intra_bytes_per_s = 325.3e9,
                      .allreduce_pass_bytes_per_s = 452.7e9, .inter_latency_s = 5e-6, .inter_bytes_per_s = 100e9};
  request.profile = PLAIT_SOURCE_DIR "/docs/gpu/a100-node-fitted.json";
  request.kinds = {"gpipe", "1f1b", "1f1b-interleaved", "zb-h1", "mgrit"};
  request.max_grad_error = 1;
  request.top = 0;
  request.plait_binary = PLAIT_BINARY;
  request.output_dir = dir;
  return request;
}

std::string temporary_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("plait-plan-test-" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

TEST(Plan, ExtrapolatedStepAndMemoryEqualTheWholePrograms) {
  PlanRequest request = small_request(temporary_dir("extrapolate"));
  request.global_batch = 96;
  const costmodels::Profile profile = costmodels::load_profile(request.profile);
  detail::PlanEstimator estimator(request, costmodels::make_profile_pricer(profile));
  const auto pricer = costmodels::make_profile_pricer(profile);
  struct Case {
    std::string kind;
    int stages, chunks;
  };
  for (const auto& [kind, stages, chunks] : std::vector<Case>{{"gpipe", 2, 1}, {"gpipe", 4, 1}, {"1f1b", 3, 1},
                                                              {"1f1b", 4, 1}, {"zb-h1", 4, 1}, {"1f1b-interleaved", 4, 2},
                                                              {"1f1b-interleaved", 2, 4}, {"1f1b-interleaved", 2, 3}}) {
    Candidate candidate;
    candidate.gpus = stages, candidate.kind = kind, candidate.pp = stages, candidate.micro_batch = 1;
    candidate.virtual_stages = chunks;
    estimator.estimate(candidate);
    ASSERT_EQ(candidate.refused, "") << candidate.label();
    const int whole = detail::step_micro_batches(request, candidate);
    ASSERT_GT(whole, detail::probe_micro_batches(request, candidate).second) << candidate.label();  // extrapolated
    const schedule::Program program =
        schedule::build_kind(kind, detail::candidate_spec(request, candidate, whole, 1));
    std::int64_t memory = 0;
    for (const auto& rank : schedule::estimate_memory(program, 2)) memory = std::max(memory, rank.total());
    costmodels::StepLinks links;
    links.ring = {8.07e-6, 325.3e9, 452.7e9};
    links.messages.segments = {{std::numeric_limits<std::int64_t>::max(), 8.07e-6, 1 / 325.3e9}};
    const double seconds = costmodels::StepEstimator(program).seconds(*pricer, links);
    EXPECT_NEAR(candidate.estimated_s / seconds, 1, 1e-9) << candidate.label();
    // GPipe's stages drift apart in the dry run, so the messages it holds grow
    // a little past 4 P micro-batches: its memory to within 1 %.
    EXPECT_NEAR(double(candidate.memory_bytes) / double(memory), 1, kind == "gpipe" ? 1e-2 : 1e-9) << candidate.label();
  }
}

// On a platform whose collectives across nodes are hierarchical (a fitted
// cluster), the replicas' gradient sum is that closed form over the devices
// of one position in every replica, and the replica's own step prices its
// messages and tensor-parallel groups across nodes the same way.
TEST(Plan, OnAHierarchicalClusterTheGradientSumIsItsClosedForm) {
  PlanRequest request = small_request(temporary_dir("hierarchical"));
  request.platform.hierarchical_collectives = true;
  request.platform.inter_collective_overhead_s = 20e-6;
  const costmodels::Profile profile = costmodels::load_profile(request.profile);
  const detail::PlanEstimator estimator(request, costmodels::make_profile_pricer(profile));
  Candidate candidate;
  candidate.gpus = 16, candidate.kind = "1f1b", candidate.pp = 2, candidate.dp = 8, candidate.micro_batch = 1;
  const costmodels::StepLinks links = estimator.links_for(candidate);
  ASSERT_TRUE(links.cluster.has_value());
  EXPECT_EQ(links.cluster->devices_per_node, 8);
  // A replica over two nodes: its messages inside a node stay the node's (the
  // estimator prices those between nodes itself).
  Candidate wide = candidate;
  wide.gpus = 16, wide.tp = 8, wide.dp = 1;
  const costmodels::StepLinks wide_links = estimator.links_for(wide);
  ASSERT_EQ(wide_links.messages.segments.size(), 1u);
  EXPECT_DOUBLE_EQ(wide_links.messages.segments[0].latency_s, 8.07e-6);
  EXPECT_DOUBLE_EQ(wide_links.messages.segments[0].seconds_per_byte, 1 / 325.3e9);
  // Devices 0, 2, ..., 14: 4 on each of 2 nodes, the other position's group beside them.
  const double bytes = 1e9;
  const double expected = costmodels::hierarchical_allreduce_seconds(
      links.ring, links.cluster->inter, {.nodes = 2, .per_node = 4, .sharing = 2}, bytes);
  EXPECT_DOUBLE_EQ(estimator.gradient_sum_seconds(candidate, links, bytes), expected);
  EXPECT_DOUBLE_EQ(links.cluster->inter.collective_overhead_s, 20e-6);
  candidate.dp = 1, candidate.gpus = 2;
  EXPECT_EQ(estimator.gradient_sum_seconds(candidate, links, bytes), 0);
}

TEST(Plan, EstimateAgreesWithSimGridOnSmallCasesOfEveryKind) {
  PlanRequest request = small_request(temporary_dir("simgrid"));
  for (const std::string& kind : small_request("").kinds) {
    request.kinds = {kind};
    request.top = 2;
    request.jobs = 2;
    const PlanResult result = plan(request);
    int simulated = 0;
    for (const Candidate& candidate : result.kept)
      if (candidate.simulated_s) {
        ++simulated;
        // One node (8) and two (16): the estimate's ring and links against SimGrid's flows.
        EXPECT_NEAR(candidate.estimated_s / *candidate.simulated_s, 1, 0.1) << candidate.label();
      }
    EXPECT_EQ(simulated, 4) << kind;
  }
}

TEST(Plan, MgritCarriesItsMeasuredGradientErrorAndExactKindsNone) {
  PlanRequest request = small_request(temporary_dir("gradient"));
  request.kinds = {"mgrit", "1f1b"};
  const PlanResult result = plan(request);
  std::map<int, double> error_by_iterations;  // L2, cf 2, one adjoint iteration
  for (const Candidate& c : result.kept) {
    if (c.kind != "mgrit") {
      EXPECT_EQ(c.grad_error, 0);
      continue;
    }
    EXPECT_GT(c.grad_error, 0) << c.label();
    EXPECT_LE(c.grad_error_spread, c.grad_error) << c.label();
    if (c.levels == 2 && c.cf == 2 && c.bwd_iters == 1) error_by_iterations[c.fwd_iters] = c.grad_error;
  }
  ASSERT_EQ(error_by_iterations.size(), 3u);
  EXPECT_GT(error_by_iterations[1], error_by_iterations[2]);  // iterations converge
  EXPECT_GT(error_by_iterations[2], error_by_iterations[4]);
  request.max_grad_error = error_by_iterations[2] * 1.01;
  for (const Candidate& c : plan(request).kept) EXPECT_LE(c.grad_error, request.max_grad_error) << c.label();
}

TEST(Plan, CsvAndJsonRoundTrip) {
  PlanRequest request = small_request(temporary_dir("csv"));
  request.platform.device_memory_bytes = 3e8;  // some refused for memory
  const PlanResult result = plan(request);
  ASSERT_FALSE(result.kept.empty());
  ASSERT_FALSE(result.refused.empty());
  const std::vector<Candidate> back = parse_plan_csv(plan_csv(result), "plan.csv");
  ASSERT_EQ(back.size(), result.kept.size() + result.refused.size());
  for (std::size_t i = 0; i < result.kept.size(); ++i) {
    EXPECT_EQ(back[i].label(), result.kept[i].label());
    EXPECT_NEAR(back[i].estimated_s / result.kept[i].estimated_s, 1, 1e-5);
    EXPECT_EQ(back[i].memory_bytes, result.kept[i].memory_bytes);
  }
  EXPECT_EQ(back.back().refused, result.refused.back().refused);
  const auto json = nlohmann::json::parse(plan_json(result));
  EXPECT_EQ(json.at("kept").size(), result.kept.size());
  EXPECT_EQ(json.at("searched").get<int>(), result.searched);
  EXPECT_GT(json.at("kept").at(0).at("mfu").get<double>(), 0);
  EXPECT_EQ(error_of([] { parse_plan_csv("gpus,kind\n1,2\n", "p.csv"); }).rfind("p.csv: line 1: not a plan.csv header", 0), 0u);
}

// ZeRO stages, sequence parallelism and selective recompute are searched when
// asked: each sharded split holds less than the same split unsharded, its
// Program has every replica (its gradient collectives inside, none added),
// and plan.csv carries them (a plan.csv of before them still reads).
TEST(Plan, SearchesShardingSequenceParallelismAndSelectiveRecompute) {
  PlanRequest request = small_request(temporary_dir("sharded"));
  request.kinds = {"1f1b"};
  request.gpus = {16};
  request.zero_stages = {0, 1, 2, 3};
  request.sequence_parallel = true;
  request.selective_recompute = true;
  const PlanResult result = plan(request);
  const auto find = [&](int tp, int pp, int dp, int micro, int zero, bool sp, bool selective) -> const Candidate* {
    for (const Candidate& c : result.kept)
      if (c.tp == tp && c.pp == pp && c.dp == dp && c.micro_batch == micro && c.zero == zero &&
          c.sequence_parallel == sp && c.selective_recompute == selective && !c.recompute)
        return &c;
    return nullptr;
  };
  const Candidate* plain = find(2, 1, 8, 1, 0, false, false);
  ASSERT_NE(plain, nullptr);
  std::int64_t previous = plain->memory_bytes;
  for (const int zero : {1, 2, 3}) {
    const Candidate* sharded = find(2, 1, 8, 1, zero, false, false);
    ASSERT_NE(sharded, nullptr) << zero;
    EXPECT_LT(sharded->memory_bytes, previous) << sharded->label();
    EXPECT_EQ(sharded->gradient_sum_s, 0) << sharded->label();
    previous = sharded->memory_bytes;
    // Its estimate and memory are those of its whole Program (every replica written).
    const costmodels::Profile profile = costmodels::load_profile(request.profile);
    const detail::PlanEstimator estimator(request, costmodels::make_profile_pricer(profile));
    const schedule::Program whole = schedule::build_kind(
        "1f1b", detail::candidate_spec(request, *sharded, detail::step_micro_batches(request, *sharded), sharded->dp));
    const double seconds = costmodels::StepEstimator(whole).seconds(*costmodels::make_profile_pricer(profile),
                                                                    estimator.links_for(*sharded));
    EXPECT_NEAR(sharded->estimated_s / seconds, 1, 1e-9) << sharded->label();
    std::int64_t memory = 0;
    for (const auto& rank : schedule::estimate_memory(whole, 2)) memory = std::max(memory, rank.total());
    EXPECT_EQ(sharded->memory_bytes, memory) << sharded->label();
  }
  const Candidate* sequence_parallel = find(2, 1, 8, 1, 0, true, false);
  const Candidate* selective = find(2, 1, 8, 1, 0, false, true);
  ASSERT_NE(sequence_parallel, nullptr);
  ASSERT_NE(selective, nullptr);
  EXPECT_LT(sequence_parallel->memory_bytes, plain->memory_bytes);
  EXPECT_LT(selective->memory_bytes, plain->memory_bytes);
  EXPECT_GT(selective->estimated_s, plain->estimated_s);  // attention's core again in the backward
  EXPECT_EQ(find(1, 1, 16, 1, 0, true, false), nullptr);  // no sequence parallelism without tp
  const std::vector<Candidate> back = parse_plan_csv(plan_csv(result), "plan.csv");
  for (std::size_t i = 0; i < result.kept.size(); ++i) EXPECT_EQ(back[i].label(), result.kept[i].label());
  // Written before the last three columns: read with none of them.
  std::string older = plan_csv(result);
  older = older.substr(0, older.find(",zero,sequence_parallel,selective_recompute")) + "\n" +
          "16,1f1b,2,1,8,1,1,0,0,0,0,0,0.5,,0.1,1000,8e+10,0,0,\n";
  const std::vector<Candidate> old = parse_plan_csv(older, "old.csv");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].zero, 0);
  EXPECT_EQ(old[0].label(), "1f1b tp2 pp1 dp8 mb1");
}

TEST(Plan, BadRequestsAreOneLineErrors) {
  PlanRequest request = small_request(temporary_dir("bad"));
  request.kinds = {"pipedream"};
  EXPECT_EQ(error_of([&] { plan(request); }),
            "--kinds pipedream: unknown kind (mgrit, gpipe, 1f1b, 1f1b-interleaved, zb-h1 or all)");
  request = small_request(temporary_dir("bad"));
  request.model.heads = 7;
  EXPECT_EQ(error_of([&] { plan(request); }), "--heads 7: must divide --d-model 512");
  request = small_request(temporary_dir("bad"));
  request.gpus = {3};
  request.global_batch = 7;
  request.model.layers = 2;
  EXPECT_NE(error_of([&] { plan(request); }).find("--gpus 3: no split of 3 GPUs"), std::string::npos);
  EXPECT_NE(error_of([] { find_model("gpt5"); }).find("--model gpt5: unknown model"), std::string::npos);
}

TEST(Plan, FrozenBlocksMakeThePipelinesCheaperAndMgritIsRefused) {
  PlanRequest request = small_request(temporary_dir("frozen"));
  request.kinds = {"1f1b", "mgrit"};
  request.gpus = {8};
  const PlanResult trained = plan(request);
  request.frozen_blocks = 6;
  const PlanResult frozen = plan(request);
  ASSERT_FALSE(frozen.kept.empty());
  for (const Candidate& c : frozen.kept) EXPECT_EQ(c.kind, "1f1b");
  EXPECT_LT(frozen.kept.front().estimated_s, trained.kept.front().estimated_s);
  bool mgrit_refused = false;
  for (const Candidate& c : frozen.refused)
    mgrit_refused |= c.kind == "mgrit" && c.refused.find("only the pipelines") != std::string::npos;
  EXPECT_TRUE(mgrit_refused);
  request.frozen_blocks = 8;
  EXPECT_EQ(error_of([&] { plan(request); }), "--frozen 8: must be in 0..7 (the model's blocks less one)");
}

TEST(Plan, RefusesWhatDoesNotFitAndSaysWhy) {
  PlanRequest request = small_request(temporary_dir("memory"));
  request.model = find_model("gpt3-175b");
  request.global_batch = 64;
  request.gpus = {8};
  request.kinds = {"1f1b"};
  const PlanResult result = plan(request);
  EXPECT_TRUE(result.kept.empty());  // 175B's 2.8 TB of weights and Adam state on 8 GPUs
  ASSERT_FALSE(result.refused.empty());
  EXPECT_EQ(result.refused.front().refused.rfind("memory: ", 0), 0u) << result.refused.front().refused;
}

}  // namespace
}  // namespace plait::experiments
