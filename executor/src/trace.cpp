#include "plait/executor/trace.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

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

void to_json(nlohmann::json& out, const TraceEvent& e) {
  out = nlohmann::json{{"rank", e.rank}, {"section", e.section}, {"repetition", e.repetition},
                       {"op", e.op},     {"kind", e.kind},       {"key", e.key},
                       {"level", e.level}, {"point", e.point},   {"start", e.start},
                       {"end", e.end},   {"bytes", e.bytes},     {"peer", e.peer}};
}

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

std::vector<TraceEvent> unpack_events(const schedule::Program& program, int rank,
                                      const std::vector<double>& packed) {
  if (packed.size() % fields_per_record != 0)
    throw Error("trace of rank " + std::to_string(rank), "truncated record list");
  const auto& sections = program.rank_programs.at(rank).sections;
  std::vector<TraceEvent> events;
  events.reserve(packed.size() / fields_per_record);
  for (std::size_t i = 0; i < packed.size(); i += fields_per_record) {
    TraceEvent e;
    e.rank = rank;
    e.section = int(packed[i]);
    e.repetition = int(packed[i + 1]);
    e.op = int(packed[i + 2]);
    e.start = packed[i + 3];
    e.end = packed[i + 4];
    const schedule::Op& op = sections.at(e.section).ops.at(e.op);
    e.kind = std::string(to_string(op.kind));
    e.key = std::string(schedule::cost_key(op));
    const bool is_step = op.kind == OpKind::step || op.kind == OpKind::step_adjoint;
    e.level = is_step ? op.level : subject(op).level;
    e.point = subject(op).point;
    if (schedule::is_communication(op.kind)) {
      e.bytes = op.bytes;
      e.peer = op.peer;
    }
    events.push_back(std::move(e));
  }
  return events;
}

std::string dump_trace(const std::vector<TraceEvent>& events, int ranks) {
  nlohmann::json out{{"format", "plait.trace"}, {"version", 1}, {"source", "measured"},
                     {"ranks", ranks},          {"events", events}};
  return out.dump();
}

void save_trace(const std::string& path, const std::vector<TraceEvent>& events, int ranks) {
  std::ofstream file(path);
  if (!file) throw Error(path, "cannot open for writing");
  file << dump_trace(events, ranks) << '\n';
  if (!file) throw Error(path, "write failed");
}

}  // namespace plait::executor
