// plan.csv's loader against mutated files: each loads or gives one located error.
#include <gtest/gtest.h>

#include "../support/loader_fuzz.hpp"
#include "plait/experiments/plan.hpp"

namespace plait::experiments {
namespace {

TEST(PlanFuzz, MutatedPlanCsvLoadsOrGivesOneLocatedError) {
  const std::string valid =
      "gpus,kind,tp,pp,dp,micro_batch,virtual_stages,recompute,levels,cf,fwd_iters,bwd_iters,estimated_s,"
      "simulated_s,gradient_sum_s,memory_bytes,device_memory_bytes,grad_error,grad_error_spread,refused\n"
      "64,1f1b-interleaved,8,8,1,1,3,1,0,0,0,0,12.5,12.9,0.25,4.1e10,8e10,0,0,\n"
      "64,mgrit,8,8,1,2,1,0,2,4,2,1,30.1,,0,5e10,8e10,0.003,0.001,\n"
      "64,gpipe,1,64,1,1,1,0,0,0,0,0,9,,0,9e10,8e10,0,0,\"memory: needs 90 GiB, of 67 GiB\"\n";
  const auto summary = plait::testing::fuzz_loader(valid, "plan.csv", 3000, [](const std::string& text) {
    parse_plan_csv(text, "plan.csv");
  });
  EXPECT_GT(summary.loaded, 100);
  EXPECT_GT(summary.refused, 500);
}

}  // namespace
}  // namespace plait::experiments
