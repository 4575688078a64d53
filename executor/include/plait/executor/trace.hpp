// Measured traces: a listener times every op of a rank; rank 0 gathers the
// records, aligns the clocks and writes one event list.
//
// File format (version 1, the traces issue owns its evolution):
//   {"format": "plait.trace", "version": 1, "source": "measured", "ranks": P,
//    "events": [{"rank", "section", "repetition", "op", "kind", "key", "level",
//                "point", "start", "end", "bytes", "peer"}, ...]}
// start/end are seconds since the traced step began, on rank 0's clock;
// bytes is the message size of send/recv (0 for compute ops); peer is -1
// for ops without one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/schedule/interpret.hpp"

namespace plait::executor {

struct TraceEvent {
  int rank = 0;
  int section = 0;
  int repetition = 0;
  int op = 0;  // index within its section
  std::string kind;
  std::string key;  // schedule::cost_key
  int level = 0;
  int point = 0;
  double start = 0;
  double end = 0;
  std::int64_t bytes = 0;
  int peer = -1;
};

void to_json(nlohmann::json& out, const TraceEvent& event);

class TraceRecorder final : public schedule::OpListener {
 public:
  struct Record {
    int section = 0, repetition = 0, op = 0;
    double start = 0, end = 0;  // this rank's steady clock (now_seconds)
  };

  // `synchronize` runs before each clock read (device work must be finished
  // for a timestamp to mean anything on cuda); empty on cpu.
  explicit TraceRecorder(std::function<void()> synchronize = {});

  void before(const schedule::OpRef& ref) override;
  void after(const schedule::OpRef& ref) override;

  const std::vector<Record>& records() const { return records_; }
  void clear() { records_.clear(); }

 private:
  std::function<void()> synchronize_;
  std::vector<Record> records_;
};

// Records as flat numbers (for a gather), shifted onto rank 0's clock
// (minus clock_offset) and relative to `origin` (rank 0's clock).
std::vector<double> pack_records(const std::vector<TraceRecorder::Record>& records,
                                 double clock_offset, double origin);
// Events of `rank` from its packed records; op details come from the Program.
std::vector<TraceEvent> unpack_events(const schedule::Program& program, int rank,
                                      const std::vector<double>& packed);

std::string dump_trace(const std::vector<TraceEvent>& events, int ranks);
void save_trace(const std::string& path, const std::vector<TraceEvent>& events, int ranks);

}  // namespace plait::executor
