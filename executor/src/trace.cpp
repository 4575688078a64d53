#include "plait/executor/trace.hpp"

#include "plait/executor/world.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {

using schedule::OpKind;

namespace {

constexpr std::size_t fields_per_record = 5;  // section, repetition, op, start, end

// The buffer an op is about: the one it writes, or the one it reads when it
// writes only a register (norm_sq) or nothing (send).
const schedule::Buffer& subject(const schedule::Op& op) {
  if (op.kind == OpKind::send || op.kind == OpKind::norm_sq || op.kind == OpKind::record_norm) return op.a;
  return op.dst;
}

}  // namespace

TraceRecorder::TraceRecorder(std::function<void()> synchronize) : synchronize_(std::move(synchronize)) {}

void TraceRecorder::before(const schedule::OpRef& ref) {
  if (synchronize_) synchronize_();
  records_.push_back({ref.section, ref.repetition, ref.index, now_seconds(), 0.0});
}

void TraceRecorder::after(const schedule::OpRef&) {
  if (synchronize_) synchronize_();
  records_.back().end = now_seconds();
}

std::vector<double> pack_records(const std::vector<TraceRecorder::Record>& records, double clock_offset,
                                 double origin) {
  std::vector<double> packed;
  packed.reserve(records.size() * fields_per_record);
  for (const auto& r : records) {
    packed.insert(packed.end(), {double(r.section), double(r.repetition), double(r.op),
                                 r.start - clock_offset - origin, r.end - clock_offset - origin});
  }
  return packed;
}

traces::Trace make_trace(const schedule::Program& program, const std::vector<std::vector<double>>& packed) {
  traces::Trace trace;
  trace.source = "measured";
  trace.ranks = int(packed.size());
  for (int rank = 0; rank < int(packed.size()); ++rank) {
    const auto& numbers = packed[rank];
    if (numbers.size() % fields_per_record != 0)
      throw Error("trace of rank " + std::to_string(rank), "truncated record list");
    const auto& sections = program.rank_programs.at(rank).sections;
    for (std::size_t i = 0; i < numbers.size(); i += fields_per_record) {
      traces::Event e;
      e.rank = rank;
      e.section = int(numbers[i]);
      e.repetition = int(numbers[i + 1]);
      e.op = int(numbers[i + 2]);
      e.start = numbers[i + 3];
      e.end = numbers[i + 4];
      const schedule::Op& op = sections.at(e.section).ops.at(e.op);
      e.cost_key = std::string(schedule::cost_key(op));
      const bool is_step = op.kind == OpKind::step || op.kind == OpKind::step_adjoint;
      e.level = is_step ? op.level : subject(op).level;
      e.point = subject(op).point;
      if (schedule::is_communication(op.kind)) {
        e.bytes = op.bytes;
        e.peer = op.peer;
      }
      trace.events.push_back(std::move(e));
    }
  }
  return trace;
}

}  // namespace plait::executor
