// Measured traces: a listener times every op of a rank; rank 0 gathers the
// records, puts them on one clock and turns them into a plait::traces::Trace
// (the one event format of measured and predicted runs; traces/ owns it).
#pragma once

#include <functional>
#include <vector>

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

// Records as flat numbers (for a gather), shifted onto rank 0's clock
// (minus clock_offset) and relative to `origin` (rank 0's clock).
std::vector<double> pack_records(const std::vector<TraceRecorder::Record>& records,
                                 double clock_offset, double origin);
// The measured trace from every rank's packed records (index = rank); cost
// key, level, point, bytes and peer of each op come from the Program.
traces::Trace make_trace(const schedule::Program& program, const std::vector<std::vector<double>>& packed);

}  // namespace plait::executor
