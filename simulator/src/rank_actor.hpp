// What one simulated rank runs: the one interpreter with the cost backend and
// a SimGrid comm, recording a timeline of compute and message activities.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <simgrid/s4u/Barrier.hpp>
#include <simgrid/s4u/ConditionVariable.hpp>
#include <simgrid/s4u/Mutex.hpp>

#include "collectives.hpp"
#include "plait/costmodels/cluster_links.hpp"
#include "plait/schedule/interpret.hpp"
#include "plait/simulator/simulator.hpp"

namespace simgrid::s4u {
class Mailbox;
}

namespace plait::simulator::detail {

// One entry of a rank's timeline: a compute op, a message sent, or a message
// received (including those inside a collective).
struct Activity {
  enum class Kind : std::uint8_t { compute, send, recv };
  Kind kind = Kind::compute;
  bool block_step = false;  // compute: a block.* op
  std::int32_t section = 0;
  std::int32_t op = 0;
  std::int32_t peer = -1;            // send/recv
  bool rendezvous = false;           // recv: data flowed only once it was posted
  std::int64_t peer_activity = -1;   // recv: the matching send in the peer's timeline
  double start = 0;
  double end = 0;
  double sent_at = 0;  // recv: when the peer sent it
};

struct RankState {
  int rank = 0;
  std::vector<Activity> timeline;
  schedule::OpRef current;   // op in progress
  std::string waiting_for;   // set while blocked on a message
  double op_waiting_s = 0;   // of the current op: time before awaited messages were sent
  bool finished = false;
  double finished_at = 0;
  std::string error;
  std::int64_t ops = 0;
  std::int64_t messages_sent = 0;
  double stream_wait_s = 0;  // at the end of its program, waiting for its gradient stream
  // Before block steps, waiting for their blocks' prefetched all-gathers (on
  // the gradient stream): in all, and of the current op (its event starts after it).
  double prefetch_wait_s = 0;
  double op_prefetch_wait_s = 0;
};

// Simulated time: SimGrid's clock inside actors, or a plain sum for one-rank
// programs priced outside any simulation.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now() const = 0;
  virtual void spend(double seconds) = 0;
};

class SimGridClock final : public Clock {
 public:
  double now() const override;
  void spend(double seconds) override;
};

class SumClock final : public Clock {
 public:
  double now() const override { return seconds_; }
  void spend(double seconds) override { seconds_ += seconds; }

 private:
  double seconds_ = 0;
};

// The cost backend: each compute op advances time by its price (a block step
// after an idle stretch by its price x the pricer's idle_factor); registers
// hold 0 and buffers no bytes (the cost backend has no data).
class CostBackend final : public schedule::Backend {
 public:
  CostBackend(const schedule::Program& program, const costmodels::OpPricer& pricer, Clock& clock,
              RankState* state);
  void compute(const schedule::Op& op) override;
  double read_register(const schedule::Buffer&) override { return 0; }
  void write_register(const schedule::Buffer&, double) override {}
  std::span<const std::byte> bytes_of(const schedule::Buffer&) override { return {}; }
  void assign_bytes(const schedule::Buffer&, std::span<const std::byte>) override {}

 private:
  const schedule::Program& program_;
  const costmodels::OpPricer& pricer_;
  Clock& clock_;
  RankState* state_;
  double last_block_end_ = -1;  // when this rank's last block step ended
};

// Overlapped replica collectives (gradient all-reduces and reduce-scatters,
// prefetched all-gathers) travel on a channel of their own, received by the
// ranks' gradient streams.
enum class Channel : std::uint8_t { point_to_point, collective, gradient };

class GradientStream;

// The mailbox carrying messages from `src` to `dst` on `channel`: one per
// ordered pair and protocol, so messages between two ranks match in order.
simgrid::s4u::Mailbox* mailbox_of(Channel channel, bool rendezvous, int src, int dst);

// Where the members of a group priced in closed form meet: each leaves when
// the last arrives, with no message and no time of its own (its cost is the
// closed form's). One barrier per channel and group: a rank's collectives in
// place and those of its gradient stream meet their own kind. Actors run one
// at a time: no lock.
class GroupBarriers {
 public:
  void wait(Channel channel, std::span<const int> group);

 private:
  std::map<std::pair<Channel, std::vector<int>>, simgrid::s4u::BarrierPtr> barriers_;
};

// What a rank's communication costs besides its messages.
struct CommCosts {
  double pass_bytes_per_s = 0;    // PlatformSpec::allreduce_pass_bytes_per_s
  double message_overhead_s = 0;  // the rank's time on each send and recv (the pricer's)
  // A tensor-parallel group shares one node's NVSwitch and runs in lockstep:
  // its activation all-reduces take the ring's closed form over this link
  // (2 (T - 1) steps of latency + a T-th of the state, plus the pass), not
  // message by message (a 512-GPU step would simulate ~100 M messages).
  // Across nodes (a star platform's NICs), the hierarchical closed form
  // (costmodels/cluster_links.hpp), the node's devices sharing its NICs.
  LinkSpec tensor_link;
  // The Program, for the tensors a per-tensor gradient all-reduce sums (null: none).
  const schedule::Program* program = nullptr;
  // Where the ranks are: each rank's device (null: all on one node), nodes of
  // devices_per_node, busy_devices of a node running a collective at once.
  const std::vector<int>* device_of_rank = nullptr;
  int devices_per_node = 0;
  int busy_devices = 0;
  costmodels::InterNodeLinks inter;
  // Gradient all-reduces (and ZeRO's reduce-scatters and all-gathers) that
  // cross nodes in closed form too (the group meets at its barrier, then
  // takes the hierarchical time), not their messages.
  bool hierarchical_gradients = false;
  GroupBarriers* barriers = nullptr;  // set with hierarchical_gradients
};

// Messages over SimGrid mailboxes. Sends are detached (never block). Eager
// mailboxes have the receiving actor as permanent receiver, so data flows at
// once; rendezvous ones start the transfer when the receive is posted.
class SimGridComm final : public schedule::Comm {
 public:
  // `stream`: where overlapped replica collectives go (null: none in the program).
  SimGridComm(RankState& state, int ranks, AllreduceAlgorithm algorithm, std::int64_t eager_limit_bytes,
              GradientStream* stream = nullptr, CommCosts costs = {});
  void send(const schedule::Op& op, std::span<const std::byte> bytes) override;
  std::vector<std::byte> recv(const schedule::Op& op) override;
  double allreduce_sum(const schedule::Op& op, std::span<const int> group, double value) override;
  std::vector<std::byte> allreduce_gradients(const schedule::Op& op, std::span<const int> group,
                                             std::span<const std::byte> gradients) override;
  // ZeRO / FSDP: NCCL's ring reduce-scatter and all-gather (the halves of
  // the ring all-reduce), in place or on the gradient stream (Op::overlap).
  std::vector<std::byte> reduce_scatter_gradients(const schedule::Op& op, std::span<const int> group,
                                                  std::span<const std::byte> gradients) override;
  std::vector<std::byte> all_gather_parameters(const schedule::Op& op, std::span<const int> group,
                                               std::span<const std::byte> parameters) override;
  void tensor_allreduces(const schedule::Op& op, std::span<const int> group, int count, std::int64_t bytes) override;
  // A block step waits for its block's all-gathers prefetched on the stream.
  void before_compute(const schedule::Op& op) override;
  void finish() override;  // waits for the gradient stream

  // A collective within `group` on `channel`, whichever replica collective
  // `op` is: a gradient all-reduce's pass over its buffer, then its messages;
  // a reduce-scatter's or all-gather's ring.
  void collective(Channel channel, const schedule::Op& op, std::span<const int> group, double value);
  // One all-reduce of `bytes` within `group`: a gradient all-reduce's pass over its buffer, then its messages.
  void collective_of(Channel channel, schedule::OpKind kind, std::span<const int> group, std::int64_t bytes,
                     double value);
  // One reduce-scatter or all-gather of `bytes` (the whole buffer) within
  // `group`: the ring's D - 1 steps of bytes / D; across nodes with
  // hierarchical collectives, the group's barrier then the closed form.
  void sharded_collective(Channel channel, schedule::OpKind kind, std::span<const int> group, std::int64_t bytes);
  void post(Channel channel, int peer, std::int64_t bytes, double value);
  double receive(Channel channel, int peer, std::int64_t bytes);

 private:
  // In place, or pushed to the gradient stream when `op` overlaps.
  void run_or_push(const schedule::Op& op, std::span<const int> group);
  // How `group` (ranks) lies over nodes; one node when ranks' devices are not known.
  costmodels::GroupSpan span_of_group(std::span<const int> group) const;
  costmodels::RingAllreduceModel node_ring() const;
  bool is_rendezvous(std::int64_t bytes) const { return eager_limit_bytes_ >= 0 && bytes > eager_limit_bytes_; }
  simgrid::s4u::Mailbox* cached(Channel channel, bool rendezvous, int src, int dst);
  RankState& state_;
  int ranks_;
  AllreduceAlgorithm algorithm_;
  std::int64_t eager_limit_bytes_;
  GradientStream* stream_;
  CommCosts costs_;
  std::unordered_map<std::int64_t, simgrid::s4u::Mailbox*> mailboxes_;
  std::optional<costmodels::GroupSpan> tensor_span_;
};

// A collective's messages within its group on one channel of a SimGridComm:
// peers are indices into `group`.
class CollectivePort final : public MessagePort {
 public:
  CollectivePort(SimGridComm& comm, Channel channel, std::span<const int> group)
      : comm_(comm), channel_(channel), group_(group) {}
  void post(int peer, std::int64_t bytes, double value) override {
    comm_.post(channel_, group_[static_cast<std::size_t>(peer)], bytes, value);
  }
  double receive(int peer, std::int64_t bytes) override {
    return comm_.receive(channel_, group_[static_cast<std::size_t>(peer)], bytes);
  }

 private:
  SimGridComm& comm_;
  Channel channel_;
  std::span<const int> group_;
};

// A rank's gradient stream (Op::overlap): an actor beside the rank's that
// runs its overlapped replica collectives (grad_allreduce, reduce_scatter,
// prefetched all_gather) one after another, in the order the rank issues
// them (as NCCL runs DDP's buckets and FSDP's gathers on its own stream),
// while the rank computes on; a block step waits for its block's prefetched
// gathers, the rank for all of it at the end of its program. Its messages
// are its own, outside the rank's timeline.
class GradientStream {
 public:
  GradientStream(int rank, int ranks, AllreduceAlgorithm algorithm, std::int64_t eager_limit_bytes, CommCosts costs);
  void push(const schedule::Op& op, std::span<const int> group);  // from the rank's actor
  // Whether all-gathers of `block` pushed so far are yet to finish.
  bool gathering(int block) const;
  // From the rank's actor: until they have; throws the stream's error.
  void wait_for_gathers(int block);
  void close_and_wait();                                          // from the rank's actor; throws its error
  void run();                                                     // the stream actor's body
  double active_s() const { return active_s_; }                   // time spent on collectives

 private:
  struct Job {
    const schedule::Op* op;
    std::vector<int> group;
  };
  RankState state_;
  SimGridComm comm_;
  std::deque<Job> jobs_;
  std::map<int, int> pending_gathers_;  // block -> its all-gathers pushed and not yet finished
  bool closed_ = false, done_ = false;
  double active_s_ = 0;
  simgrid::s4u::MutexPtr mutex_;
  simgrid::s4u::ConditionVariablePtr changed_;
};

// Bridges the interpreter's op callbacks to the simulator's event listeners.
class RankOpListener final : public schedule::OpListener {
 public:
  RankOpListener(RankState& state, const std::vector<EventListener*>& listeners)
      : state_(state), listeners_(listeners) {}
  void before(const schedule::OpRef& ref) override;
  void after(const schedule::OpRef& ref) override;

 private:
  RankState& state_;
  const std::vector<EventListener*>& listeners_;
  double start_ = 0;
};

}  // namespace plait::simulator::detail
