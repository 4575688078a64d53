#include "plait/executor/mpi_world.hpp"

#include <chrono>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include <mpi.h>

#include "detail/mpi_shards.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {
namespace {

void check(int code, const std::string& where) { detail::check_mpi(code, where); }

// Calls `add` with every group member's bytes (this rank's own included, all
// of this rank's size), in group order.
template <typename Add>
void for_each_member(MPI_Comm comm, int tag, std::span<const int> group, std::span<const std::byte> mine,
                     const std::string& where, const Add& add) {
  if (mine.size() > std::size_t(INT_MAX)) throw Error(where, "collective over 2 GiB");
  int me = 0;
  MPI_Comm_rank(comm, &me);
  std::vector<MPI_Request> sends;
  for (int peer : group)
    if (peer != me)
      check(MPI_Isend(mine.data(), int(mine.size()), MPI_BYTE, peer, tag, comm, &sends.emplace_back()), where);
  std::unique_ptr<std::byte[]> part(new std::byte[mine.size()]);
  for (int peer : group) {
    if (peer == me) {
      add(mine.data());
      continue;
    }
    MPI_Status status;
    check(MPI_Recv(part.get(), int(mine.size()), MPI_BYTE, peer, tag, comm, &status), where);
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (std::size_t(count) != mine.size())
      throw Error(where, "rank " + std::to_string(peer) + " sent " + std::to_string(count) +
                             " bytes to the collective, this rank has " + std::to_string(mine.size()));
    add(part.get());
  }
  check(MPI_Waitall(int(sends.size()), sends.data(), MPI_STATUSES_IGNORE), where);
}

// Tensor-parallel sums on a communicator of their own (a duplicate), so
// they never match a Program message or a gradient sum.
class MpiGroupSum final : public GroupSum {
 public:
  MpiGroupSum(MPI_Comm comm, std::span<const int> group) : comm_(comm), group_(group.begin(), group.end()) {}
  ~MpiGroupSum() override { MPI_Comm_free(&comm_); }
  int size() const override { return int(group_.size()); }
  void sum(std::span<float> values) override { sum_in_group_order(values); }
  void sum(std::span<double> values) override { sum_in_group_order(values); }

 private:
  template <typename T>
  void sum_in_group_order(std::span<T> values) {
    const std::vector<T> mine(values.begin(), values.end());
    bool first = true;
    for_each_member(comm_, 0, group_, std::as_bytes(std::span<const T>(mine)), "tensor-parallel sum",
                    [&](const std::byte* part) {
                      const auto* member = reinterpret_cast<const T*>(part);  // new[]'s storage is aligned for T
                      for (std::size_t i = 0; i < values.size(); ++i) values[i] = first ? member[i] : values[i] + member[i];
                      first = false;
                    });
  }

  MPI_Comm comm_;
  std::vector<int> group_;
};

std::string op_where(const schedule::Op& op) {
  return std::string(to_string(op.kind)) + " peer " + std::to_string(op.peer) + " tag " + std::to_string(op.tag);
}

// Program messages. Sends copy their bytes and return at once (MPI_Isend):
// the validator checks Programs under the rule that a send never blocks.
class MpiComm final : public schedule::Comm {
 public:
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  ~MpiComm() override {
    for (auto& pending : pending_) MPI_Wait(&pending.request, MPI_STATUS_IGNORE);
  }

  void send(const schedule::Op& op, std::span<const std::byte> bytes) override {
    if (bytes.size() > std::size_t(INT_MAX)) throw Error(op_where(op), "message over 2 GiB");
    reap();
    auto& pending = pending_.emplace_back();
    pending.data.assign(bytes.begin(), bytes.end());
    check(MPI_Isend(pending.data.data(), int(pending.data.size()), MPI_BYTE, op.peer, op.tag, comm_,
                    &pending.request),
          op_where(op));
  }

  std::vector<std::byte> recv(const schedule::Op& op) override {
    if (op.bytes < 0 || op.bytes > INT_MAX) throw Error(op_where(op), "bad message size");
    std::vector<std::byte> data(std::size_t(op.bytes));
    MPI_Status status;
    check(MPI_Recv(data.data(), int(data.size()), MPI_BYTE, op.peer, op.tag, comm_, &status), op_where(op));
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (count != op.bytes)
      throw Error(op_where(op), "got " + std::to_string(count) + " bytes, expected " + std::to_string(op.bytes));
    return data;
  }

  double allreduce_sum(const schedule::Op& op, std::span<const int> group, double value) override {
    double sum = 0;
    if (int(group.size()) == size()) {
      check(MPI_Allreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, comm_), op_where(op));
      return sum;
    }
    for_each_member(comm_, collective_tag, group, {reinterpret_cast<const std::byte*>(&value), sizeof value}, op_where(op),
                    [&](const std::byte* part) {
      double member = 0;
      std::memcpy(&member, part, sizeof member);
      sum += member;
    });
    return sum;
  }

  // Sums fp32 elements in group order on every member, so that every replica
  // holds bit-identical gradients (MPI_Allreduce on a sub-communicator would
  // need every rank to split it, and does not promise the same order).
  std::vector<std::byte> allreduce_gradients(const schedule::Op& op, std::span<const int> group,
                                             std::span<const std::byte> gradients) override {
    const std::size_t elements = gradients.size() / sizeof(float);
    std::vector<std::byte> sum(elements * sizeof(float));  // operator new's storage is aligned for float
    auto* total = reinterpret_cast<float*>(sum.data());
    bool first = true;
    for_each_member(comm_, collective_tag, group, gradients, op_where(op), [&](const std::byte* part) {
      if (first) std::memcpy(total, part, sum.size());
      else
        for (std::size_t i = 0; i < elements; ++i) total[i] += reinterpret_cast<const float*>(part)[i];
      first = false;
    });
    return sum;
  }

  // ZeRO's collectives: point-to-point on this communicator too, summed in group order.
  std::vector<std::byte> reduce_scatter_gradients(const schedule::Op& op, std::span<const int> group,
                                                  std::span<const std::byte> gradients) override {
    return detail::reduce_scatter_fp32(comm_, collective_tag, group, gradients, op_where(op));
  }
  std::vector<std::byte> all_gather_parameters(const schedule::Op& op, std::span<const int> group,
                                               std::span<const std::byte> parameters) override {
    return detail::all_gather_fp32(comm_, collective_tag, group, parameters, op_where(op));
  }

  // The torch backend's block steps run a tensor-parallel group's sums
  // themselves (GroupSum): they sit inside the block, not after it.
  void tensor_allreduces(const schedule::Op&, std::span<const int>, int, std::int64_t) override {}

 private:
  struct Pending {
    std::vector<std::byte> data;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  // Frees the buffers of sends that completed (in order, which is enough to
  // keep the queue short: sends complete roughly in order).
  void reap() {
    while (!pending_.empty()) {
      int done = 0;
      MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE);
      if (!done) return;
      pending_.pop_front();
    }
  }

  int size() const {
    int size = 0;
    MPI_Comm_size(comm_, &size);
    return size;
  }

  // The largest tag every MPI allows; built Programs tag by space x 64 + level.
  static constexpr int collective_tag = 32767;

  MPI_Comm comm_;
  std::deque<Pending> pending_;  // deque: elements never move
};

class MpiWorld final : public World {
 public:
  // Takes ownership of `comm` (a dup or split); Program messages use a second
  // duplicate so they can never match the driver's own messages.
  MpiWorld(MPI_Comm comm, ClockSync clock_sync) : control_(comm), clock_sync_(clock_sync) {
    MPI_Comm_set_errhandler(control_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(control_, &rank_);
    MPI_Comm_size(control_, &size_);
    MPI_Comm_dup(control_, &data_);
    MPI_Comm_set_errhandler(data_, MPI_ERRORS_RETURN);
  }
  ~MpiWorld() override {
    MPI_Comm_free(&data_);
    MPI_Comm_free(&control_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override { check(MPI_Barrier(control_), "barrier"); }
  void quiet_barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(control_, &request), "barrier");
    for (int done = 0;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "barrier");
      if (done) return;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  std::unique_ptr<schedule::Comm> make_comm() override { return std::make_unique<MpiComm>(data_); }

  std::unique_ptr<GroupSum> make_group_sum(std::span<const int> group) override {
    MPI_Comm comm;
    check(MPI_Comm_dup(data_, &comm), "tensor-parallel group");
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    for (int member : group)
      if (member < 0 || member >= size_) {
        MPI_Comm_free(&comm);
        throw Error("tensor-parallel group", "rank " + std::to_string(member) + " is not one of the " +
                                                 std::to_string(size_) + " ranks");
      }
    return std::make_unique<MpiGroupSum>(comm, group);
  }

  std::vector<std::vector<double>> gather(const std::vector<double>& mine) override {
    const int count = int(mine.size());
    std::vector<int> counts(rank_ == 0 ? size_ : 0), displacements(counts.size());
    check(MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, control_), "gather");
    int total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      displacements[r] = total;
      total += counts[r];
    }
    std::vector<double> all(static_cast<std::size_t>(total));
    check(MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), displacements.data(),
                      MPI_DOUBLE, 0, control_),
          "gather");
    std::vector<std::vector<double>> result;
    for (std::size_t r = 0; r < counts.size(); ++r)
      result.emplace_back(all.begin() + displacements[r], all.begin() + displacements[r] + counts[r]);
    return result;
  }

  bool all_ok(bool ok) override {
    int mine = ok ? 1 : 0, all = 0;
    check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, control_), "all_ok");
    return all == 1;
  }

  int first_failed(bool failed) override {
    int mine = failed ? rank_ : size_, lowest = size_;
    check(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, control_), "first_failed");
    return lowest == size_ ? -1 : lowest;
  }

  std::string broadcast(const std::string& text) override {
    int length = int(text.size());
    check(MPI_Bcast(&length, 1, MPI_INT, 0, control_), "broadcast");
    std::string result = rank_ == 0 ? text : std::string(std::size_t(length), '\0');
    check(MPI_Bcast(result.data(), length, MPI_CHAR, 0, control_), "broadcast");
    return result;
  }

  std::vector<double> sum_all(const std::vector<double>& mine) override {
    std::vector<double> sum(mine.size());
    check(MPI_Allreduce(mine.data(), sum.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, control_), "sum_all");
    return sum;
  }

  ClockSample sample_clock_offset() override {
    if (shares_rank0_clock_.empty()) find_shared_clocks();
    ClockSample mine{now_seconds(), 0, 0};
    for (int peer = 1; peer < size_; ++peer) {
      if (shares_rank0_clock_[std::size_t(peer)]) continue;  // offset exactly 0
      if (rank_ == 0) measure_offset_of(peer);
      else if (rank_ == peer) mine = receive_offset();
    }
    barrier();
    return mine;
  }

  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  static constexpr int clock_tag = 1;
  // Enough round trips that a few of them run while neither rank is
  // descheduled, on a loaded machine too; the fastest one is kept.
  static constexpr int clock_rounds = 64;

  // Ranks on rank 0's node read the same clock: steady_clock is Linux's
  // CLOCK_MONOTONIC, one per machine. Every rank learns every rank's flag.
  void find_shared_clocks() {
    int shares = 1;
    if (clock_sync_ == ClockSync::on_one_node_shared) {
      MPI_Comm node;
      check(MPI_Comm_split_type(control_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "clock sync");
      int node_leader = rank_;  // the lowest rank of the node, as ranked by the split's key
      check(MPI_Bcast(&node_leader, 1, MPI_INT, 0, node), "clock sync");
      MPI_Comm_free(&node);
      shares = node_leader == 0 ? 1 : 0;
    } else {
      shares = rank_ == 0 ? 1 : 0;
    }
    std::vector<int> all(std::size_t(size_), 0);
    check(MPI_Allgather(&shares, 1, MPI_INT, all.data(), 1, MPI_INT, control_), "clock sync");
    shares_rank0_clock_.assign(all.begin(), all.end());
  }

  // Cristian's method on rank 0: ping `peer` many times and keep the round
  // trip that took least; the peer's clock reading then lies within half of
  // it from the round trip's midpoint. Sends the peer {its reading, offset, rtt / 2}.
  void measure_offset_of(int peer) {
    double best_rtt = std::numeric_limits<double>::infinity();
    ClockSample best;
    for (int i = 0; i < clock_rounds; ++i) {
      const double sent = now_seconds();
      double peer_time = 0;
      check(MPI_Send(&sent, 1, MPI_DOUBLE, peer, clock_tag, control_), "clock sync");
      check(MPI_Recv(&peer_time, 1, MPI_DOUBLE, peer, clock_tag, control_, MPI_STATUS_IGNORE), "clock sync");
      const double received = now_seconds();
      if (received - sent < best_rtt) {
        best_rtt = received - sent;
        best = {peer_time, peer_time - 0.5 * (sent + received), 0.5 * best_rtt};
      }
    }
    const double result[3] = {best.local_time, best.offset, best.uncertainty};
    check(MPI_Send(result, 3, MPI_DOUBLE, peer, clock_tag, control_), "clock sync");
  }

  ClockSample receive_offset() {
    for (int i = 0; i < clock_rounds; ++i) {
      double ping = 0;
      check(MPI_Recv(&ping, 1, MPI_DOUBLE, 0, clock_tag, control_, MPI_STATUS_IGNORE), "clock sync");
      const double mine = now_seconds();
      check(MPI_Send(&mine, 1, MPI_DOUBLE, 0, clock_tag, control_), "clock sync");
    }
    double result[3] = {0, 0, 0};
    check(MPI_Recv(result, 3, MPI_DOUBLE, 0, clock_tag, control_, MPI_STATUS_IGNORE), "clock sync");
    return {result[0], result[1], result[2]};
  }

  MPI_Comm control_;
  MPI_Comm data_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  ClockSync clock_sync_;
  std::vector<char> shares_rank0_clock_;  // per rank; empty until the first sample
};

}  // namespace

MpiSession::MpiSession(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  MPI_Init(&argc, &argv);
  owns_ = true;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

std::unique_ptr<World> make_mpi_world(ClockSync clock_sync) {
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  return std::make_unique<MpiWorld>(comm, clock_sync);
}

std::unique_ptr<World> make_mpi_subworld(bool member) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, member ? 0 : MPI_UNDEFINED, world_rank, &comm);
  if (!member) return nullptr;
  return std::make_unique<MpiWorld>(comm, ClockSync::on_one_node_shared);
}

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

}  // namespace plait::executor
