// Sweep specs: 10,000 mutated and truncated copies of the shipped specs each
// load or give one located plait::Error (see tests/support/loader_fuzz.hpp).
#include <gtest/gtest.h>

#include "loader_fuzz.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

TEST(SweepSpecFuzz, MutatedSpecsLoadOrGiveOneLocatedError) {
  for (const char* name : {"local.json", "cluster-h100.json"}) {
    const std::string valid = read_text_file(std::string(PLAIT_EXPERIMENTS_DIR) + "/" + name);
    const auto summary = plait::testing::fuzz_loader(valid, name, 5000,
                                                     [&](const std::string& text) { parse_sweep_spec(text, name); });
    EXPECT_GT(summary.refused, 1000) << name;
  }
}

}  // namespace
}  // namespace plait::experiments
