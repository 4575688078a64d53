// The ranks a run spans: who am I, how many are we, and the few collectives
// the executor's driver needs. MpiWorld (executor_mpi) spans MPI ranks;
// SelfWorld is one rank with no MPI at all (a GPU box, benchmarks, tests).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "plait/schedule/interpret.hpp"

namespace plait::executor {

// The steady clock every trace and timing reads, in seconds.
double now_seconds();
// CPU seconds this process has used (all threads): on a shared machine the
// wall time of a rank also counts the time other processes held its core.
double cpu_seconds();

// Where this rank's steady clock stands against rank 0's: when this rank's
// clock read `local_time`, rank 0's read `local_time - offset`, give or take
// `uncertainty` (half the fastest round trip; 0 where the clock is shared).
struct ClockSample {
  double local_time = 0;
  double offset = 0;
  double uncertainty = 0;
};

// An element-wise sum, in place, over a fixed group of ranks (a
// tensor-parallel group): every member calls it with the same sizes in the
// same order, and every member gets bit-identical sums (added in group order).
class GroupSum {
 public:
  virtual ~GroupSum() = default;
  virtual int size() const = 0;
  virtual void sum(std::span<float> values) = 0;
  virtual void sum(std::span<double> values) = 0;
};

class World {
 public:
  virtual ~World() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // A barrier whose waiting ranks sleep instead of spinning, so that a rank
  // timing something alone (the serial baseline) keeps its core.
  virtual void quiet_barrier() = 0;
  // A Comm for one interpret() run. Destroying it waits for its sends.
  virtual std::unique_ptr<schedule::Comm> make_comm() = 0;
  // Collective over every rank: a GroupSum over `group` (ascending ranks,
  // this one among them), on messages of its own.
  virtual std::unique_ptr<GroupSum> make_group_sum(std::span<const int> group) = 0;
  // Rank 0 gets every rank's vector in rank order; other ranks get {}.
  virtual std::vector<std::vector<double>> gather(const std::vector<double>& mine) = 0;
  // True on every rank iff `ok` is true on every rank.
  virtual bool all_ok(bool ok) = 0;
  // Lowest rank whose `failed` is true, or -1: every rank gets the same answer.
  virtual int first_failed(bool failed) = 0;
  // Rank 0's text, on every rank.
  virtual std::string broadcast(const std::string& text) = 0;
  // Element-wise sum over ranks, on every rank (equal sizes everywhere).
  virtual std::vector<double> sum_all(const std::vector<double>& mine) = 0;
  // Collective: this rank's clock against rank 0's, now (offset 0 on rank 0).
  virtual ClockSample sample_clock_offset() = 0;
  // Ends every rank now (a rank failed); never returns.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

class SelfWorld final : public World {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  void quiet_barrier() override {}
  std::unique_ptr<schedule::Comm> make_comm() override;
  std::unique_ptr<GroupSum> make_group_sum(std::span<const int> group) override;
  std::vector<std::vector<double>> gather(const std::vector<double>& mine) override { return {mine}; }
  bool all_ok(bool ok) override { return ok; }
  int first_failed(bool failed) override { return failed ? 0 : -1; }
  std::string broadcast(const std::string& text) override { return text; }
  std::vector<double> sum_all(const std::vector<double>& mine) override { return mine; }
  ClockSample sample_clock_offset() override { return {now_seconds(), 0, 0}; }
  [[noreturn]] void abort(int exit_code) override;
};

}  // namespace plait::executor
