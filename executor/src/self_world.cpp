#include <time.h>

#include <chrono>
#include <cstdlib>

#include "plait/executor/world.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {
namespace {

// One rank: an allreduce is the identity and a message has nowhere to go.
class SelfComm final : public schedule::Comm {
 public:
  void send(const schedule::Op& op, std::span<const std::byte>) override {
    throw Error("send to rank " + std::to_string(op.peer), "a single-rank run has no peers");
  }
  std::vector<std::byte> recv(const schedule::Op& op) override {
    throw Error("recv from rank " + std::to_string(op.peer), "a single-rank run has no peers");
  }
  double allreduce_sum(const schedule::Op&, std::span<const int>, double value) override { return value; }
};

// A group of this one rank: the sum is the value.
class SelfGroupSum final : public GroupSum {
 public:
  int size() const override { return 1; }
  void sum(std::span<float>) override {}
  void sum(std::span<double>) override {}
};

}  // namespace

std::unique_ptr<schedule::Comm> SelfWorld::make_comm() { return std::make_unique<SelfComm>(); }

std::unique_ptr<GroupSum> SelfWorld::make_group_sum(std::span<const int> group) {
  if (group.size() != 1 || group[0] != 0)
    throw Error("tensor-parallel group", "a single-rank run has no ranks but 0 to sum over");
  return std::make_unique<SelfGroupSum>();
}

void SelfWorld::abort(int exit_code) { std::_Exit(exit_code); }

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return double(now.tv_sec) + 1e-9 * double(now.tv_nsec);
}

}  // namespace plait::executor
