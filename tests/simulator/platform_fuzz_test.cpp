// Platform files: 10,000 mutated and truncated platforms each load or give one
// located plait::Error (see tests/support/loader_fuzz.hpp). Inputs go through
// parse_platform_text, the loader of load_platform, then place_ranks.
#include <gtest/gtest.h>

#include <algorithm>

#include "error_text.hpp"
#include "loader_fuzz.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::simulator {
namespace {

const std::string fuzz_file = "fuzz.json";

void load_text(const std::string& text) {
  const PlatformSpec spec = parse_platform_text(text, fuzz_file);
  place_ranks(spec, std::min(spec.device_count(), 4));  // what simulate does next
}

std::string error_of(const std::string& text) {
  return plait::testing::error_of([&] { load_text(text); });
}

const char* const torus_platform = R"({
  "format": "plait.platform", "version": 1, "name": "torus",
  "nodes": 6,
  "node": {"devices": [{"sheet": "h100-sxm", "profile": "local-profile.json"}, {"sheet": "a100-80gb"}],
           "link": {"sheet": "nvlink4", "latency_s": 1e-6}},
  "inter_node": {"topology": "torus", "dimensions": [2, 3],
                 "link": {"latency_s": 4e-6, "bandwidth_bytes_per_s": 5e10}},
  "placement": [0, 3, 5, 7, 11]
})";

TEST(PlatformFuzz, MutatedFatTreePlatformsLoadOrGiveOneLocatedError) {
  const std::string valid = read_text_file(PLAIT_PLATFORMS_DIR "/h100x256-fattree.json");
  const auto summary = testing::fuzz_loader(valid, fuzz_file, 10000, load_text);
  EXPECT_GT(summary.refused, 5000);
}

TEST(PlatformFuzz, MutatedFittedClusterPlatformsLoadOrGiveOneLocatedError) {
  const std::string valid = read_text_file(PLAIT_PLATFORMS_DIR "/a100-cluster-fitted.json");
  ASSERT_EQ(error_of(valid), "no error");
  testing::fuzz_loader(valid, fuzz_file, 10000, load_text);
}

TEST(PlatformFuzz, MutatedTorusPlatformsLoadOrGiveOneLocatedError) {
  ASSERT_EQ(error_of(torus_platform), "no error");
  testing::fuzz_loader(torus_platform, fuzz_file, 10000, load_text);
}

// What the fuzzer found, pinned.
TEST(PlatformFuzz, HugeDeviceCountsAreRefusedWithTheirLimit) {
  std::string text = torus_platform;
  text.replace(text.find("\"nodes\": 6"), 10, "\"nodes\": 1000000000");
  EXPECT_EQ(error_of(text), fuzz_file + ": /nodes: 1000000000 above the limit of 1048576");
  text = read_text_file(PLAIT_PLATFORMS_DIR "/h100x32.json");
  text.replace(text.find("\"devices\": 8"), 12, "\"devices\": 1000000000");
  EXPECT_EQ(error_of(text), fuzz_file + ": /node/devices: 1000000000 above the limit of 4096");
  text = read_text_file(PLAIT_PLATFORMS_DIR "/h100x32.json");
  text.replace(text.find("\"nodes\": 4"), 10, "\"nodes\": 1000000");
  EXPECT_EQ(error_of(text), fuzz_file + ": /nodes: 1000000 nodes of 8 devices are above the limit of 1048576 devices");
}

TEST(PlatformFuzz, NumberOverflowIsAnError) {
  std::string text = torus_platform;
  text.replace(text.find("4e-6"), 4, "4e999");
  EXPECT_NE(error_of(text).find(fuzz_file + ": not valid JSON: "), std::string::npos) << error_of(text);
}

}  // namespace
}  // namespace plait::simulator
