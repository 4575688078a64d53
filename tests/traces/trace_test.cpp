// The trace format, its Perfetto export and predicted-vs-measured comparison.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/trace.hpp"

namespace plait::traces {
namespace {

Trace sample(double step_scale) {
  Trace trace;
  trace.source = "measured";
  trace.ranks = 2;
  trace.events = {
      {0, 0, 0, 0, "block.fwd", 0, 1, 0.0, 1.0 * step_scale, 0, -1},
      {0, 0, 0, 1, "comm.send", 0, 1, 1.0 * step_scale, 1.0 * step_scale + 0.25, 4096, 1},
      {1, 0, 0, 0, "comm.recv", 0, 1, 0.0, 1.0 * step_scale + 0.25, 4096, 0},
      {1, 0, 0, 1, "block.fwd", 0, 2, 1.0 * step_scale + 0.25, 2.0 * step_scale + 0.25, 0, -1},
  };
  return trace;
}

std::string error_of(const std::string& text) {
  return plait::testing::error_of([&] { parse_trace(text, "t.json"); });
}

TEST(Trace, RoundTripKeepsEveryField) {
  const Trace trace = sample(1.0);
  EXPECT_EQ(parse_trace(dump_trace(trace)), trace);
}

Trace imported() {  // the optional fields an import writes
  Trace trace = sample(1.0);
  trace.events[0].kind = "compute";
  trace.events[0].track = "gpu 0 stream 7";
  trace.events[2].kind = "collective";
  trace.events[2].collective = 3;
  trace.events[2].group = "0";
  trace.events[2].deps = {0, 1};
  return trace;
}

TEST(Trace, ImportedFieldsRoundTripAndAreCheckedWhenPresent) {
  EXPECT_EQ(parse_trace(dump_trace(imported())), imported());
  EXPECT_EQ(dump_trace(sample(1.0)).find("\"kind\""), std::string::npos);  // absent when unset
  auto document = nlohmann::json::parse(dump_trace(imported()));
  document["events"][0]["kind"] = "kernel";
  EXPECT_EQ(error_of(document.dump()),
            "t.json: /events/0/kind: unknown kind \"kernel\" (compute, collective, memory, send, recv, host, wait or step)");
  document = nlohmann::json::parse(dump_trace(imported()));
  document["events"][2]["deps"] = {0, 4};
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/deps/1: event 4 outside 0..3");
  document["events"][2]["deps"] = {2};
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/deps/0: an event cannot depend on itself");
  document["events"][2]["deps"] = {-1};
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/deps/0: event -1 outside 0..3");
  document["events"][2]["deps"] = "0";
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/deps: expected an array, got string");
  document["events"][2].erase("deps");
  document["events"][2]["collective"] = -2;
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/collective: expected -1 (none) or an instance id");
}

TEST(Trace, PerfettoExportOfAnImportedTraceHasAThreadPerTrack) {
  const auto document = nlohmann::json::parse(dump_perfetto(imported()));
  std::set<std::pair<int, int>> threads;
  std::set<std::string> names;
  for (const auto& event : document["traceEvents"]) {
    if (event["ph"] == "M" && event["name"] == "thread_name") names.insert(event["args"]["name"].get<std::string>());
    if (event["ph"] == "X") threads.insert({event["pid"].get<int>(), event["tid"].get<int>()});
  }
  EXPECT_EQ(names, (std::set<std::string>{"gpu 0 stream 7"}));  // untracked events share thread 0
  EXPECT_EQ(threads.size(), 3u);  // rank 0: its stream and its untracked event; rank 1: one
}

TEST(Trace, MakespanSpansAllRanks) { EXPECT_DOUBLE_EQ(sample(1.0).makespan(), 2.25); }

TEST(Trace, BadFilesGetLocatedErrors) {
  auto document = nlohmann::json::parse(dump_trace(sample(1.0)));
  document["events"][2]["end"] = "late";
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/2/end: expected a number, got string");
  document = nlohmann::json::parse(dump_trace(sample(1.0)));
  document["events"][1]["rank"] = 5;
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/1/rank: rank 5 outside 0..1");
  document = nlohmann::json::parse(dump_trace(sample(1.0)));
  document["events"][0]["end"] = -1.0;
  EXPECT_EQ(error_of(document.dump()), "t.json: /events/0: ends before it starts");
  document.erase("version");
  EXPECT_EQ(error_of(document.dump()), "t.json: missing \"version\"");
  EXPECT_EQ(error_of("{\"format\": \"plait.program\", \"version\": 1}"),
            "t.json: /format: expected \"plait.trace\", got \"plait.program\"");
  EXPECT_EQ(error_of("{\"format\": "), "t.json: not valid JSON: byte 12");
}

TEST(Trace, PerfettoExportHasATrackPerRankAndAnEventPerOp) {
  const auto document = nlohmann::json::parse(dump_perfetto(sample(1.0)));
  int metadata = 0, complete = 0;
  for (const auto& event : document["traceEvents"]) {
    if (event["ph"] == "M") ++metadata;
    if (event["ph"] == "X") {
      ++complete;
      EXPECT_GE(event["dur"].get<double>(), 0);
    }
  }
  EXPECT_EQ(metadata, 2);
  EXPECT_EQ(complete, 4);
  EXPECT_EQ(document["traceEvents"][2]["name"], "block.fwd");
  EXPECT_DOUBLE_EQ(document["traceEvents"][3]["ts"].get<double>(), 1e6);  // microseconds
}

TEST(Trace, ComparisonPerCostKeyAndMakespan) {
  Trace predicted = sample(1.5);
  predicted.source = "predicted";
  const Comparison comparison = compare(sample(1.0), predicted);
  EXPECT_DOUBLE_EQ(comparison.measured_makespan_s, 2.25);
  EXPECT_DOUBLE_EQ(comparison.predicted_makespan_s, 3.25);
  EXPECT_NEAR(comparison.relative_error, 1.0 / 2.25, 1e-12);
  ASSERT_EQ(comparison.keys.size(), 3u);
  EXPECT_EQ(comparison.keys[0].cost_key, "block.fwd");
  EXPECT_EQ(comparison.keys[0].measured_count, 2);
  EXPECT_NEAR(comparison.keys[0].relative_error, 0.5, 1e-12);
  EXPECT_EQ(comparison.keys[2].cost_key, "comm.send");
  EXPECT_NEAR(comparison.keys[2].relative_error, 0.0, 1e-12);
  EXPECT_NE(format_comparison(comparison).find("step (makespan)"), std::string::npos);
}

}  // namespace
}  // namespace plait::traces
