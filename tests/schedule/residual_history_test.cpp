// The lean cycle computes what the previous cycle computed, iteration by
// iteration: residual histories pinned in data/residual_histories.json (made by
// data/regen_residual_histories.sh with the cycle that interpolated fine
// F-points after every correction) still come out.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/schedule/build.hpp"
#include "plait/schedule/reference.hpp"

namespace plait::schedule {
namespace {

nlohmann::json pinned() {
  std::ifstream in(PLAIT_SCHEDULE_TEST_DATA "/residual_histories.json");
  return nlohmann::json::parse(in);
}

BuildSpec spec_of(const nlohmann::json& config) {
  BuildSpec spec;
  spec.layers = config["layers"];
  spec.ranks = config["ranks"];
  spec.forward = {.levels = config["levels"], .coarsening_factor = config["cf"],
                  .relax = parse_relax(config["relax"].get<std::string>()),
                  .iterations = config["iterations"], .skip_first_down_relax = config["skip"]};
  spec.adjoint = spec.forward;
  spec.model.kind = config["problem"];
  return spec;
}

void expect_same_history(const std::vector<double>& now, const nlohmann::json& before, double relative,
                         const std::string& what) {
  ASSERT_EQ(now.size(), before.size()) << what;
  for (std::size_t i = 0; i < now.size(); ++i) {
    const double expected = before[i];
    EXPECT_NEAR(now[i], expected, relative * std::abs(expected) + 1e-300) << what << " iteration " << i + 1;
  }
}

TEST(ResidualHistory, ForwardNormsEqualThePreviousCycles) {
  const auto configs = pinned();
  ASSERT_GE(configs.size(), 5u);
  for (const auto& config : configs) {
    const auto report = solve_reference(build_mgrit(spec_of(config)));
    expect_same_history(report.residual_norms, config["solve"]["residual_norms"], 1e-12, config.dump());
  }
}

}  // namespace
}  // namespace plait::schedule
