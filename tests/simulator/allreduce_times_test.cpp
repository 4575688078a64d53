// Simulated all-reduces against the ring's closed form on uniform links:
// 2 (G - 1) messages of a G-th of the buffer, each the link's latency plus its
// bytes over the link's bandwidth, after the platform's pass over the buffer.
#include <gtest/gtest.h>

#include "plait/simulator/allreduce_times.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;

// One simulation a process: the cases' times from a child, one at a time.
double simulated_s(const PlatformSpec& platform, const std::vector<AllreduceCase>& cases, std::size_t which) {
  return in_child_process([&] {
    SimulateOptions options;
    options.allreduce = AllreduceAlgorithm::ring;
    return simulate_allreduces(platform, cases, options).at(which);
  });
}

TEST(AllreduceTimes, RingMatchesItsClosedFormOnUniformLinks) {
  // A100 NVLink figures as fitted (8 us a step, 325 GB/s), a 450 GB/s pass.
  PlatformSpec node = cluster(1, 8, link(8e-6, 325e9));
  node.allreduce_pass_bytes_per_s = 450e9;
  const std::vector<AllreduceCase> cases = {{2, 16 << 20}, {8, 16 << 20}, {5, 1 << 30}, {8, 1 << 30}};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const double g = cases[i].devices, bytes = double(cases[i].bytes);
    const double expected = 2 * (g - 1) * (8e-6 + bytes / g / 325e9) + bytes / 450e9;
    EXPECT_NEAR(simulated_s(node, cases, i), expected, 1e-6 * expected) << g << " devices, " << bytes << " B";
  }
}

TEST(AllreduceTimes, RefusesCasesThePlatformCannotHold) {
  const PlatformSpec node = cluster(1, 4, link(1e-6, 1e9));
  EXPECT_TRUE(std::isnan(simulated_s(node, {{8, 1024}}, 0)));  // the child's error
  EXPECT_TRUE(std::isnan(simulated_s(node, {{1, 1024}}, 0)));
}

}  // namespace
}  // namespace plait::simulator
