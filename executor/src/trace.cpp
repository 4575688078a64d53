#include "plait/executor/trace.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>

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

ClockMap::ClockMap(const ClockSample& before, const ClockSample& after) : before_(before), after_(after) {}

double ClockMap::to_rank0(double local_time) const {
  const double span = after_.local_time - before_.local_time;
  double offset = before_.offset;
  if (span > 0 && local_time >= after_.local_time) offset = after_.offset;
  else if (span > 0 && local_time > before_.local_time)
    offset += (after_.offset - before_.offset) * (local_time - before_.local_time) / span;
  return local_time - offset;
}

std::vector<double> pack_records(const std::vector<TraceRecorder::Record>& records, const ClockMap& clock,
                                 double origin) {
  std::vector<double> packed;
  packed.reserve(records.size() * fields_per_record);
  for (const auto& r : records) {
    packed.insert(packed.end(), {double(r.section), double(r.repetition), double(r.op),
                                 clock.to_rank0(r.start) - origin, clock.to_rank0(r.end) - origin});
  }
  return packed;
}

std::vector<double> causal_rank_shifts(const schedule::Program& program,
                                       const std::vector<std::vector<double>>& packed) {
  const int ranks = int(packed.size());
  // (sender, receiver, tag) -> send starts / receive ends, in each rank's order.
  std::map<std::tuple<int, int, int>, std::vector<double>> send_starts, recv_ends;
  for (int rank = 0; rank < ranks; ++rank) {
    const auto& numbers = packed[std::size_t(rank)];
    const auto& sections = program.rank_programs.at(std::size_t(rank)).sections;
    for (std::size_t i = 0; i + fields_per_record <= numbers.size(); i += fields_per_record) {
      const auto& op = sections.at(std::size_t(numbers[i])).ops.at(std::size_t(numbers[i + 2]));
      if (op.kind == OpKind::send) send_starts[{rank, op.peer, op.tag}].push_back(numbers[i + 3]);
      if (op.kind == OpKind::recv) recv_ends[{op.peer, rank, op.tag}].push_back(numbers[i + 4]);
    }
  }
  // slack[s][r]: the least (receive end - send start) over messages s -> r;
  // causality wants shift[s] - shift[r] <= slack[s][r].
  const double none = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> slack(std::size_t(ranks), std::vector<double>(std::size_t(ranks), none));
  for (const auto& [key, starts] : send_starts) {
    const auto& [sender, receiver, tag] = key;
    if (sender < 0 || sender >= ranks || receiver < 0 || receiver >= ranks) continue;
    const auto found = recv_ends.find(key);
    if (found == recv_ends.end()) continue;
    const auto& ends = found->second;
    double& least = slack[std::size_t(sender)][std::size_t(receiver)];
    for (std::size_t n = 0; n < std::min(starts.size(), ends.size()); ++n) least = std::min(least, ends[n] - starts[n]);
  }
  // Bellman-Ford from all zeros: the largest shifts <= 0 meeting every
  // constraint, so a rank moves (earlier) only as far as its messages need.
  constexpr double margin = 1e-6;
  std::vector<double> shift(std::size_t(ranks), 0.0);
  for (int pass = 0; pass < ranks; ++pass) {
    bool moved = false;
    for (int s = 0; s < ranks; ++s)
      for (int r = 0; r < ranks; ++r) {
        const double bound = shift[std::size_t(r)] + slack[std::size_t(s)][std::size_t(r)];
        if (shift[std::size_t(s)] > bound) {
          shift[std::size_t(s)] = bound - margin;
          moved = true;
        }
      }
    if (!moved) break;
  }
  // Rank 0's clock stays the reference: only differences matter.
  const double reference = ranks > 0 ? shift[0] : 0.0;
  for (double& value : shift) value -= reference;
  return shift;
}

traces::Trace make_trace(const schedule::Program& program, const std::vector<std::vector<double>>& packed) {
  traces::Trace trace;
  trace.source = "measured";
  trace.ranks = int(packed.size());
  const auto shifts = causal_rank_shifts(program, packed);
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
      e.start = numbers[i + 3] + shifts[std::size_t(rank)];
      e.end = numbers[i + 4] + shifts[std::size_t(rank)];
      const schedule::Op& op = sections.at(e.section).ops.at(e.op);
      e.cost_key = std::string(schedule::cost_key(op));
      const bool is_step = schedule::is_block_step(op.kind);
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
