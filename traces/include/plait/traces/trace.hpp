// One event format for measured (executor) and predicted (simulator) runs,
// its Chrome/Perfetto export, and the comparison of two runs.
//
// File format "plait.trace", version 1:
//   {"format": "plait.trace", "version": 1, "source": "measured" | "predicted",
//    "ranks": P, "events": [{"rank", "section", "repetition", "op", "cost_key",
//    "level", "point", "start", "end", "bytes", "peer"}, ...]}
// start/end: seconds from the start of the traced step on one clock (the
// executor aligns its ranks' clocks); bytes: message size (0 for compute);
// peer: the other rank of a message, -1 for compute.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plait::traces {

struct Event {
  int rank = 0;
  int section = 0;
  int repetition = 0;
  int op = 0;  // index within its section
  std::string cost_key;
  int level = 0;
  int point = 0;
  double start = 0;
  double end = 0;
  std::int64_t bytes = 0;
  int peer = -1;

  friend bool operator==(const Event&, const Event&) = default;
};

struct Trace {
  static constexpr int format_version = 1;
  std::string source = "measured";
  int ranks = 1;
  std::vector<Event> events;

  double makespan() const;  // last end - first start
  friend bool operator==(const Trace&, const Trace&) = default;
};

std::string dump_trace(const Trace& trace);  // streamed: traces have millions of events
void save_trace(const Trace& trace, const std::string& path);
// Validates format, version, every field's type, rank < ranks, end >= start;
// errors name the file and the JSON pointer.
Trace parse_trace(const std::string& text, const std::string& origin = "<string>");
Trace load_trace(const std::string& path);

// Chrome trace-event JSON (opens in ui.perfetto.dev): one track per rank,
// one complete event per op, named by cost key.
std::string dump_perfetto(const Trace& trace);

struct KeyComparison {
  std::string cost_key;
  std::int64_t measured_count = 0, predicted_count = 0;
  double measured_s = 0, predicted_s = 0;  // summed over ranks and ops
  double relative_error = 0;               // (predicted - measured) / measured
};

struct Comparison {
  double measured_makespan_s = 0, predicted_makespan_s = 0;
  double relative_error = 0;  // of the makespan
  std::vector<KeyComparison> keys;
};

Comparison compare(const Trace& measured, const Trace& predicted);
std::string format_comparison(const Comparison& comparison);  // a table
void to_json(nlohmann::json& out, const Comparison& comparison);

}  // namespace plait::traces
