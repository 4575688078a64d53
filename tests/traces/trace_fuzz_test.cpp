// Trace files: 10,000 mutated and truncated traces each load or give one
// located plait::Error (see tests/support/loader_fuzz.hpp).
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "loader_fuzz.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/trace.hpp"

namespace plait::traces {
namespace {

std::string valid_trace() {
  Trace trace;
  trace.source = "measured";
  trace.ranks = 2;
  trace.events = {
      {0, 0, 0, 0, "block.fwd", 0, 1, 0.0, 1.0, 0, -1},
      {0, 0, 0, 1, "comm.send", 0, 1, 1.0, 1.25, 4096, 1},
      {1, 0, 0, 0, "comm.recv", 0, 1, 0.0, 1.25, 4096, 0},
      {1, 0, 1, 1, "block.fwd", 1, 2, 1.25, 2.25, 0, -1},
      {1, 1, 0, 0, "comm.allreduce", 0, 0, 2.25, 2.5, 8, -1},
  };
  trace.events[4].kind = "collective";  // and the fields an import adds
  trace.events[4].track = "gpu 0 stream 9";
  trace.events[4].collective = 0;
  trace.events[4].group = "0";
  trace.events[4].deps = {2, 3};
  return dump_trace(trace);
}

std::string error_of(const std::string& text) {
  return plait::testing::error_of([&] { parse_trace(text, "t.json"); });
}

TEST(TraceFuzz, MutatedTracesLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_trace(), "t.json", 10000,
                                            [](const std::string& text) { parse_trace(text, "t.json"); });
  EXPECT_GT(summary.refused, 5000);
}

// What the fuzzer found, pinned.
TEST(TraceFuzz, NumberOverflowIsAnError) {
  std::string text = valid_trace();
  text.replace(text.find("\"end\":1,"), 8, "\"end\":1e999,");
  EXPECT_EQ(error_of(text), "t.json: not valid JSON: number overflow parsing '1e999'");
}

TEST(TraceFuzz, IntegersAreNeitherFloatsNorTruncated) {
  std::string text = valid_trace();
  text.replace(text.find("\"point\":2"), 9, "\"point\":4294967298");
  EXPECT_EQ(error_of(text), "t.json: /events/3/point: 4294967298 is out of range");
  text = valid_trace();
  text.replace(text.find("\"ranks\":2"), 9, "\"ranks\":2.5");
  EXPECT_EQ(error_of(text), "t.json: /ranks: expected an integer, got 2.5");
}

TEST(TraceFuzz, HugeRankCountIsRefusedWithItsLimit) {
  std::string text = valid_trace();
  text.replace(text.find("\"ranks\":2"), 9, "\"ranks\":1000000000");
  EXPECT_EQ(error_of(text), "t.json: /ranks: 1000000000 above the limit of 16777216");
}

}  // namespace
}  // namespace plait::traces
