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
//
// Imported traces (plait import, from Kineto or Chakra) also carry, each
// optional and written only when set: "kind" (compute, collective, memory,
// send, recv, host, step), "track" (the stream or thread it ran on; events of
// one rank and track run in their order in the file), "collective" (the
// matched instance: one id on every member), "group" (its process group) and
// "deps" (indices of events that must end before it starts, besides its
// track's order), "work" (a kernel's work, from the framework op that
// launched it when the profiler recorded shapes: {"op", "flops", "bytes",
// "gemm_min_dim", "dtype"}). There "repetition" is the profiler step and "op"
// the event's index on its track.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plait::traces {

// What a kernel computed (calibrate --from-trace fits the kernel model to it).
struct KernelWork {
  std::string op;  // the framework op that launched it, e.g. "aten::mm"
  double flops = 0;
  double bytes = 0;               // memory traffic: its tensors read and written once
  std::int64_t gemm_min_dim = 0;  // a GEMM's smallest dimension; 0: not a GEMM
  std::string dtype;              // fp32, fp16 or bf16

  friend bool operator==(const KernelWork&, const KernelWork&) = default;
};

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
  std::string kind;
  std::string track;
  std::int64_t collective = -1;
  std::string group;
  std::vector<std::int64_t> deps;
  std::optional<KernelWork> work;

  friend bool operator==(const Event&, const Event&) = default;
};

// The kinds an imported event may have ("" for plait's own events).
bool is_event_kind(const std::string& kind);

// Whether a track is a device's (the importers name GPU streams "gpu ..."):
// what breakdown and the import's dependencies treat as device time.
inline bool is_device_track(const std::string& track) { return track.starts_with("gpu "); }

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
