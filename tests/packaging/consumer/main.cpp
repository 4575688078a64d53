// Builds a Program through the installed plait::schedule and prints its op
// count; with the simulator, parses a platform through plait::simulator.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#ifdef WITH_SIMULATOR
#include "plait/simulator/platform.hpp"
#endif

int main() {
  plait::schedule::BuildSpec spec;
  spec.layers = 16;
  spec.ranks = 2;
  const plait::schedule::Program program = plait::schedule::build_mgrit(spec);
  long ops = 0;
  for (const auto& rank : program.rank_programs) {
    for (const auto& section : rank.sections) ops += static_cast<long>(section.ops.size());
  }
  std::printf("plait consumer: %d ranks, %ld ops\n", program.ranks, ops);
#ifdef WITH_SIMULATOR
  const auto platform = plait::simulator::parse_platform(nlohmann::json::parse(R"({
    "format": "plait.platform", "version": 1, "nodes": 1,
    "node": {"devices": 2, "device": {"sheet": "h100-sxm"}, "link": {"sheet": "nvlink4"}}})"),
                                                         "consumer.json");
  std::printf("plait consumer: platform %s with %d devices\n", platform.name.c_str(), platform.device_count());
#endif
  return ops > 0 ? 0 : 1;
}
