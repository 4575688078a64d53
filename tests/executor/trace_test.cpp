// Measured traces are causal: per-rank shifts put every receive's end at or
// after its send's start, move only the ranks that need it, and keep rank 0.
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "plait/executor/trace.hpp"

namespace plait::executor {
namespace {

using schedule::Op;
using schedule::OpKind;

Op message(OpKind kind, int peer, int tag) {
  Op op;
  op.kind = kind;
  op.peer = peer;
  op.tag = tag;
  op.bytes = 8;
  (kind == OpKind::send ? op.a : op.dst) = {schedule::Space::u, 0, 0};
  return op;
}

// One section per rank holding `ops`, in order.
schedule::Program program_of(const std::vector<std::vector<Op>>& ops_per_rank) {
  schedule::Program program;
  program.ranks = int(ops_per_rank.size());
  for (const auto& ops : ops_per_rank) program.rank_programs.push_back({{{.name = "test", .ops = ops}}});
  return program;
}

// Records of one rank: {start, end} per op of section 0, repetition 0.
std::vector<double> records(const std::vector<std::pair<double, double>>& times) {
  std::vector<double> packed;
  for (std::size_t op = 0; op < times.size(); ++op)
    packed.insert(packed.end(), {0.0, 0.0, double(op), times[op].first, times[op].second});
  return packed;
}

// Every receive ends at or after the start of the send MPI matches it with.
void expect_causal(const schedule::Program& program, const traces::Trace& trace) {
  std::map<std::tuple<int, int, int>, std::vector<double>> send_starts, recv_ends;
  for (const auto& e : trace.events) {
    const auto& op = program.rank_programs[std::size_t(e.rank)].sections[0].ops[std::size_t(e.op)];
    if (op.kind == OpKind::send) send_starts[{e.rank, op.peer, op.tag}].push_back(e.start);
    if (op.kind == OpKind::recv) recv_ends[{op.peer, e.rank, op.tag}].push_back(e.end);
  }
  ASSERT_FALSE(send_starts.empty());
  for (const auto& [key, starts] : send_starts)
    for (std::size_t n = 0; n < starts.size(); ++n)
      EXPECT_GE(recv_ends.at(key).at(n), starts[n]) << "message " << n << " from rank " << std::get<0>(key);
}

TEST(CausalTrace, CausalMessagesMoveNoRank) {
  const auto program = program_of({{message(OpKind::send, 1, 7)}, {message(OpKind::recv, 0, 7)}});
  const std::vector<std::vector<double>> packed{records({{0.0, 0.1}}), records({{0.0, 0.2}})};
  EXPECT_EQ(causal_rank_shifts(program, packed), (std::vector<double>{0.0, 0.0}));
  expect_causal(program, make_trace(program, packed));
}

TEST(CausalTrace, AnEarlyReceiverMovesLaterByWhatItsWorstMessageNeeds) {
  // Rank 1's clock reads 1.5 ms early: its receive seems to end 0.5 ms
  // before rank 0's send started; its reply is still causal.
  const auto program = program_of({{message(OpKind::send, 1, 1), message(OpKind::recv, 1, 2)},
                                   {message(OpKind::recv, 0, 1), message(OpKind::send, 0, 2)}});
  const std::vector<std::vector<double>> packed{records({{0.0, 0.0001}, {0.0001, 0.003}}),
                                                records({{-0.0015, -0.0005}, {0.0005, 0.0006}})};
  const auto shifts = causal_rank_shifts(program, packed);
  ASSERT_EQ(shifts.size(), 2u);
  EXPECT_EQ(shifts[0], 0.0);
  EXPECT_NEAR(shifts[1], 0.0005 + 1e-6, 1e-12);  // the deficit plus the documented 1 us
  expect_causal(program, make_trace(program, packed));
}

TEST(CausalTrace, AShiftCarriesOverToTheRanksAMessageTiesTogether) {
  // 0 -> 1 is 0.5 ms acausal; 2 -> 0 has 0.1 ms to spare. The least move
  // takes rank 0 0.5 ms earlier against both others, which rank 2's message
  // to rank 0 allows only if rank 2 follows by 0.4 ms; seen from rank 0
  // (the reference), rank 1 moves 0.5 ms later and rank 2 0.1 ms later.
  const auto program = program_of({{message(OpKind::send, 1, 1), message(OpKind::recv, 2, 3)},
                                   {message(OpKind::recv, 0, 1)},
                                   {message(OpKind::send, 0, 3)}});
  const std::vector<std::vector<double>> packed{records({{0.0, 0.00005}, {0.00005, 0.0001}}),
                                                records({{-0.001, -0.0005}}), records({{0.0, 0.00002}})};
  const auto shifts = causal_rank_shifts(program, packed);
  ASSERT_EQ(shifts.size(), 3u);
  EXPECT_EQ(shifts[0], 0.0);
  EXPECT_NEAR(shifts[1], 0.0005 + 1e-6, 1e-12);
  EXPECT_NEAR(shifts[2], 0.0001 - 1e-6, 1e-12);  // each move carries the 1 us margin
  expect_causal(program, make_trace(program, packed));
}

TEST(ClockMap, InterpolatesTheOffsetBetweenItsTwoSamples) {
  const ClockMap clock({.local_time = 10, .offset = 1}, {.local_time = 20, .offset = 2});
  EXPECT_DOUBLE_EQ(clock.to_rank0(10), 9);
  EXPECT_DOUBLE_EQ(clock.to_rank0(15), 13.5);
  EXPECT_DOUBLE_EQ(clock.to_rank0(20), 18);
  EXPECT_DOUBLE_EQ(clock.to_rank0(5), 4);    // before: the first offset
  EXPECT_DOUBLE_EQ(clock.to_rank0(30), 28);  // after: the last offset
}

}  // namespace
}  // namespace plait::executor
