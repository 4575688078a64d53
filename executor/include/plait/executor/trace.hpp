// Measured traces: a listener times every op of a rank; rank 0 gathers the
// records, puts them on one clock and turns them into a plait::traces::Trace
// (the one event format of measured and predicted runs; traces/ owns it).
#pragma once

#include <functional>
#include <vector>

#include "plait/executor/world.hpp"
#include "plait/schedule/interpret.hpp"
#include "plait/traces/trace.hpp"

namespace plait::executor {

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

// This rank's clock read on rank 0's: the offsets sampled before and after
// the traced step, interpolated linearly in between (two clocks drift apart
// at a steady rate over seconds), held constant outside.
class ClockMap {
 public:
  ClockMap(const ClockSample& before, const ClockSample& after);
  double to_rank0(double local_time) const;

 private:
  ClockSample before_, after_;
};

// Records as flat numbers (for a gather), on rank 0's clock and relative to
// `origin` (a time on rank 0's clock).
std::vector<double> pack_records(const std::vector<TraceRecorder::Record>& records, const ClockMap& clock,
                                 double origin);

// Seconds to add to each rank's timestamps (index = rank; rank 0 gets 0) so
// that no receive ends before its message's send starts. Messages pair up as
// MPI matches them: the n-th send from s to r with tag t is the n-th receive
// on r from s with tag t. Clock sampling leaves an error of up to half a
// round trip, which a loaded machine can stretch past a message's latency;
// this is the least such correction: a rank moves only when one of its
// messages is acausal, by the amount that fixes its worst one, plus 1 us
// (above the trace file's 9 significant digits) when it moves. Differences
// of timestamps within a rank never change. Where no shifts can satisfy
// every message (a cycle of messages on clocks that drifted unevenly within
// the step), the shifts after P passes are returned and some stay acausal.
std::vector<double> causal_rank_shifts(const schedule::Program& program,
                                       const std::vector<std::vector<double>>& packed);

// The measured trace from every rank's packed records (index = rank), made
// causal by causal_rank_shifts; cost key, level, point, bytes and peer of
// each op come from the Program.
traces::Trace make_trace(const schedule::Program& program, const std::vector<std::vector<double>>& packed);

}  // namespace plait::executor
